import Foundation
import PipelineFiles

/// Which weights of a DiT `train.py` checkpoint (`{"model", "ema", "opt", "args"}`) to serve.
public enum CheckpointPick: String, CaseIterable, Sendable {
    /// The EMA weights, which DiT samples and evaluates with; `model` when the
    /// checkpoint has no `ema` entry.
    case ema
    /// The raw training weights; an error when the checkpoint has no `model` entry.
    case model
}

/// A PyTorch checkpoint in the zip format `torch.save` writes (PyTorch ≥ 1.6):
/// `<archive>/data.pkl` (the pickled object), `<archive>/data/<key>` (raw
/// little-endian storages), `<archive>/byteorder`; or in the legacy format
/// before it (`TorchLegacyFormat`). The file is memory-mapped and storages are
/// served in place; the pickle goes through a restricted unpickler that
/// executes nothing (`TorchPickleHooks`).
///
/// Served state dict: for a train.py checkpoint `ema` (or `model`, per `pick`);
/// for `{"state_dict": …}` that dict; otherwise the top-level dict itself.
/// Nested dicts of tensors are flattened with dots; values that are not tensors
/// (optimizer state, `args`, counters) are skipped and listed in `skippedEntries`.
public final class TorchCheckpoint: TensorSource {
    public let path: String
    public var sourceName: String { path }
    public private(set) var keys: [String] = []
    /// The entry served: "ema", "model", "state_dict", or nil for a bare state dict.
    public private(set) var servedEntry: String?
    /// Entries present but not served (train.py's "opt", "args", the unpicked model/ema; non-tensor values).
    public private(set) var skippedEntries: [String] = []
    private var tensors: [String: TorchTensor] = [:]
    private let mapping: MappedFile
    /// The zip members of every storage the pickle refers to, with their storage keys.
    private var storageMembers: [(key: String, entry: ZipEntry)] = []

    public init(path: String, pick: CheckpointPick = .ema) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        let base = UnsafeRawPointer(mapping.bytes)
        func bad(_ r: String) -> WeightError { .malformed(file: path, reason: r) }

        let root: PickleValue
        if TorchLegacyFormat.matches(base, size: mapping.size) {
            root = try TorchLegacyFormat.load(file: path, base: base, size: mapping.size).0
        } else {
            let hooks: TorchPickleHooks
            (root, hooks) = try Self.loadZip(file: path, base: base, size: mapping.size)
            storageMembers = hooks.members
        }
        guard case let .dict(top) = root else { throw bad("the pickle holds a \(root.kind), not a dict of tensors") }

        let chosen = try Self.select(top, pick: pick, bad: bad)
        servedEntry = chosen.entry
        skippedEntries = top.items.compactMap { k, _ in
            guard chosen.entry != nil, case let .string(s) = k, s != chosen.entry else { return nil }
            return s
        }
        var seen = Set<ObjectIdentifier>()
        try flatten(chosen.dict, prefix: "", seen: &seen)
        guard !tensors.isEmpty else { throw bad("checkpoint holds no tensors") }
    }

    /// The zip format: finds `<archive>/data.pkl`, checks it and unpickles it.
    private static func loadZip(file path: String, base: UnsafeRawPointer, size: Int) throws -> (PickleValue, TorchPickleHooks) {
        func bad(_ r: String) -> WeightError { .malformed(file: path, reason: r) }
        let zip: ZipDirectory
        do { zip = try ZipDirectory(file: path, base: base, size: size) } catch let e as ZipError {
            throw bad(e.reason)
        }
        if zip.entries.contains(where: { $0.name.hasSuffix("/constants.pkl") }) {
            throw bad("this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
        }
        let pickles = zip.entries.filter { e in
            let parts = e.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl" && !parts[0].isEmpty
        }
        guard let pkl = pickles.first else {
            let names = zip.entries.prefix(5).map(\.name).joined(separator: ", ")
            throw bad("zip archive without '<archive>/data.pkl', so not a PyTorch checkpoint (members: \(names.isEmpty ? "none" : names))")
        }
        guard pickles.count == 1 else { throw bad("zip archive holds \(pickles.count) data.pkl members") }
        let prefix = String(pkl.name.dropLast("data.pkl".count))
        // Every member is read only after its method is checked: the directory
        // bounds a member's *compressed* bytes by the file, so only a stored
        // member's `size` bytes are known to lie in the mapping.
        if let bo = zip[prefix + "byteorder"] {
            guard bo.method == 0 else {
                throw bad("'\(bo.name)' is compressed (method \(bo.method)); torch.save stores it uncompressed")
            }
            let text = String(decoding: UnsafeRawBufferPointer(start: base + bo.dataOffset, count: min(bo.size, 16)), as: UTF8.self)
            guard text == "little" else { throw bad("byte order '\(text)' is not supported (only little-endian)") }
        }
        guard pkl.method == 0 else { throw bad("'\(pkl.name)' is compressed (method \(pkl.method)); torch.save stores it uncompressed") }
        // A recorded CRC of 0 means "not computed" (torch.serialization.set_crc32_options(False)).
        guard pkl.crc32 == 0 || CRC32.checksum(base + pkl.dataOffset, count: pkl.size) == pkl.crc32 else {
            throw bad("'\(pkl.name)' fails its CRC-32 check (damaged file)")
        }
        let hooks = TorchPickleHooks(file: path, container: .zip(zip, prefix: prefix))
        var unpickler = Unpickler(file: path, bytes: UnsafeRawBufferPointer(start: base + pkl.dataOffset, count: pkl.size), hooks: hooks)
        return (try unpickler.load(), hooks)
    }

    private static func select(_ top: PickleDict, pick: CheckpointPick,
                               bad: (String) -> WeightError) throws -> (dict: PickleDict, entry: String?) {
        func dict(_ key: String) -> PickleDict? {
            if case let .dict(d)? = top.value(forString: key) { return d }
            return nil
        }
        switch (pick, dict("ema"), dict("model")) {
        case let (.ema, ema?, _): return (ema, "ema")
        case let (_, _, model?): return (model, "model")
        case (.model, _?, nil): throw bad("checkpoint has no 'model' state dict to pick (it has 'ema')")
        default: break
        }
        if let sd = dict("state_dict") { return (sd, "state_dict") }
        return (top, nil)
    }

    private func flatten(_ d: PickleDict, prefix: String, seen: inout Set<ObjectIdentifier>) throws {
        guard seen.insert(ObjectIdentifier(d)).inserted else {
            throw WeightError.malformed(file: path, reason: "the dict at '\(prefix)' appears twice in the state dict")
        }
        for (k, v) in d.items {
            guard case let .string(name) = k else { skippedEntries.append(prefix + "<\(k.kind) key>"); continue }
            let full = prefix + name
            switch v {
            case let .opaque(t as TorchTensor):
                guard tensors[full] == nil else {
                    throw WeightError.malformed(file: path, reason: "tensor '\(full)' appears twice")
                }
                tensors[full] = t
                keys.append(full)
            case let .dict(sub):
                try flatten(sub, prefix: full + ".", seen: &seen)
            default:
                skippedEntries.append(full)
            }
        }
    }

    /// Checks the CRC-32 of the storage members the served tensors use (the
    /// pickle's is checked on opening). Reading serves bytes without this pass,
    /// which reads all of them.
    public func verifyChecksums() throws {
        let used = Set(tensors.values.map { $0.storage.key })
        for m in storageMembers where m.entry.crc32 != 0 && used.contains(m.key) {
            let sum = CRC32.checksum(UnsafeRawPointer(mapping.bytes) + m.entry.dataOffset, count: m.entry.size)
            mapping.release(offset: m.entry.dataOffset, count: m.entry.size)
            guard sum == m.entry.crc32 else {
                throw WeightError.malformed(file: path, reason: "member '\(m.entry.name)' fails its CRC-32 check (damaged file)")
            }
        }
    }

    public func info(_ key: String) -> TensorInfo? {
        tensors[key].map { TensorInfo(dtype: $0.storage.dtype, shape: $0.shape) }
    }

    /// Contiguous tensors are served from the mapping; strided ones are gathered
    /// into a temporary row-major copy for the duration of `body`.
    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        guard let t = tensors[key] else { throw WeightError.missingKey(file: path, key: key) }
        let base = UnsafeRawPointer(mapping.bytes)
        if t.isContiguous {
            let start = t.storage.fileOffset + t.offset * t.storage.dtype.size
            defer { mapping.release(offset: start, count: t.count * t.storage.dtype.size) }
            return try body(base + start)
        }
        let bytes = t.count * t.storage.dtype.size
        let tmp = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 16)
        defer { tmp.deallocate() }
        t.gather(from: base, into: tmp)
        mapping.release(offset: t.storage.fileOffset, count: t.storage.numel * t.storage.dtype.size)
        return try body(UnsafeRawPointer(tmp))
    }
}

extension MappedFile {
    /// Drops the pages of a byte range from this process's resident set once
    /// read (weights are copied out, so a multi-GB checkpoint does not stay
    /// resident beside its copy). The mapping is read-only and file-backed, so a
    /// later read simply faults the pages in again. Small ranges are left alone.
    func release(offset: Int, count: Int) {
        guard count >= 1 << 20, offset >= 0, offset + count <= size else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let end = min((offset + count + page - 1) / page * page, (size + page - 1) / page * page)
        _ = madvise(UnsafeMutableRawPointer(bytes) + start, end - start, MADV_DONTNEED)
    }
}
