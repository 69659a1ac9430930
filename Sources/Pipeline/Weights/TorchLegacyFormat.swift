import Foundation
import PipelineFiles

/// The format `torch.save` wrote before PyTorch 1.6 (and still writes with
/// `_use_new_zipfile_serialization=False`); pytorch-fid's 2019 Inception weights
/// are in it. One file holds, back to back: the pickles of the magic number, the
/// protocol version (1001) and `sys_info`; the object pickle, whose persistent
/// ids are ('storage', type, key, location, numel, view_metadata); the pickle
/// of the sorted storage keys; then for each key, its element count as a
/// little-endian int64 followed by its raw bytes.
package enum TorchLegacyFormat {
    /// PROTO 2, LONG1 of 10 bytes: 0x1950a86a20f9469cfc6c, STOP.
    static let magic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]

    static func matches(_ base: UnsafeRawPointer, size: Int) -> Bool {
        size >= magic.count && memcmp(base, magic, magic.count) == 0
    }

    /// Unpickles the object and locates every storage it uses in the mapped file.
    static func load(file: String, base: UnsafeRawPointer, size: Int) throws -> (PickleValue, TorchPickleHooks) {
        func bad(_ r: String) -> WeightError { .malformed(file: file, reason: "legacy torch.save file: \(r)") }
        let hooks = TorchPickleHooks(file: file, container: .legacy)
        var pos = magic.count
        func next(_ label: String) throws -> PickleValue {
            var u = Unpickler(file: file, bytes: UnsafeRawBufferPointer(start: base + pos, count: size - pos),
                              hooks: hooks, label: "legacy torch.save file, \(label)")
            let v = try u.load()
            pos += u.pos
            return v
        }
        guard case .int(1001) = try next("protocol version") else { throw bad("protocol version is not 1001") }
        guard case let .dict(info) = try next("sys_info") else { throw bad("sys_info is not a dict") }
        if case let .bool(little)? = info.value(forString: "little_endian"), !little {
            throw bad("written on a big-endian machine, which is not supported")
        }
        let root = try next("object pickle")
        guard case let .list(keyList) = try next("storage key list") else { throw bad("the storage key list is missing") }

        var offset = pos
        for k in keyList.items {
            guard case let .string(key) = k else { throw bad("storage key list holds a \(k.kind)") }
            guard offset <= size - 8 else { throw bad("storage '\(key)' starts past the end of the \(size)-byte file (truncated)") }
            let count = Int64(littleEndian: (base + offset).loadUnaligned(as: Int64.self))
            guard let s = hooks.storages[key] else { throw bad("storage '\(key)' is listed but never used") }
            guard count == s.numel else { throw bad("storage '\(key)' records \(count) elements, the pickle \(s.numel)") }
            // numel × size was overflow-checked when the storage was created.
            guard s.numel * s.dtype.size <= size - offset - 8 else {
                throw bad("storage '\(key)' ends past the end of the \(size)-byte file (truncated)")
            }
            s.fileOffset = offset + 8
            offset += 8 + s.numel * s.dtype.size
        }
        if let missing = hooks.storages.values.first(where: { $0.fileOffset < 0 }) {
            throw bad("storage '\(missing.key)' has no data in the file")
        }
        return (root, hooks)
    }
}
