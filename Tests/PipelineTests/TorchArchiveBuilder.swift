import Foundation
import PipelineFiles
import PipelineWeights
@testable import PipelineWeights

/// Writes small pickles opcode by opcode, for hand-made checkpoints in tests.
struct PickleBuilder {
    var bytes: [UInt8] = [0x80, 0x02]

    mutating func op(_ b: UInt8...) { bytes += b }
    mutating func string(_ s: String) {
        let u = Array(s.utf8)
        op(0x58)
        withUnsafeBytes(of: UInt32(u.count).littleEndian) { bytes += $0 }
        bytes += u
    }
    mutating func int(_ v: Int) {
        if v >= 0 && v < 65536 {
            op(0x4D, UInt8(v & 0xFF), UInt8(v >> 8))
        } else {
            op(0x8A, 8)
            withUnsafeBytes(of: Int64(v).littleEndian) { bytes += $0 }
        }
    }
    mutating func global(_ module: String, _ name: String) {
        op(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }
    mutating func ints(_ v: [Int]) {
        op(0x28)
        for x in v { int(x) }
        op(0x74)
    }
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`
    /// on the persistent storage ('storage', torch.<type>, key, 'cpu', numel).
    /// `legacy`: the pre-1.6 persistent id, with a sixth field (view metadata, None).
    mutating func tensor(storage key: String, type: String = "FloatStorage", numel: Int,
                         offset: Int = 0, shape: [Int], stride: [Int], legacy: Bool = false) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28) // MARK (args)
        op(0x28)
        string("storage"); global("torch", type); string(key); string("cpu"); int(numel)
        if legacy { op(0x4E) }
        op(0x74, 0x51) // TUPLE, BINPERSID
        int(offset)
        ints(shape)
        ints(stride)
        op(0x89) // False
        global("collections", "OrderedDict"); op(0x29, 0x52) // OrderedDict()
        op(0x74, 0x52) // TUPLE, REDUCE
    }
    /// A dict from string keys to whatever `body` pushes for each.
    mutating func dict(_ items: [(String, (inout PickleBuilder) -> Void)]) {
        op(0x7D, 0x28)
        for (k, v) in items { string(k); v(&self) }
        op(0x75)
    }
    mutating func stop() { op(0x2E) }
}

/// Writes stored (uncompressed) zip archives, optionally with zip64 records,
/// as `torch.save` lays them out.
enum ZipBuilder {
    static func le16(_ v: Int, _ out: inout [UInt8]) { out += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    static func le32(_ v: UInt32, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
    static func le64(_ v: UInt64, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }

    /// `recordCRC: false` writes 0 as every checksum, as torch does with CRC computation switched off.
    static func build(_ members: [(name: String, data: [UInt8])], zip64: Bool = false, recordCRC: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for m in members {
            let offset = out.count
            let crc = !recordCRC ? 0 : m.data.withUnsafeBytes { CRC32.checksum($0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, count: m.data.count) }
            let name = Array(m.name.utf8)
            let size32: UInt32 = zip64 ? 0xFFFF_FFFF : UInt32(m.data.count)
            var localExtra: [UInt8] = []
            if zip64 { le16(1, &localExtra); le16(16, &localExtra); le64(UInt64(m.data.count), &localExtra); le64(UInt64(m.data.count), &localExtra) }
            le32(0x0403_4b50, &out); le16(45, &out); le16(0, &out); le16(0, &out); le16(0, &out); le16(0, &out)
            le32(crc, &out); le32(size32, &out); le32(size32, &out); le16(name.count, &out); le16(localExtra.count, &out)
            out += name; out += localExtra; out += m.data

            var extra: [UInt8] = []
            if zip64 {
                le16(1, &extra); le16(24, &extra)
                le64(UInt64(m.data.count), &extra); le64(UInt64(m.data.count), &extra); le64(UInt64(offset), &extra)
            }
            le32(0x0201_4b50, &central); le16(45, &central); le16(45, &central); le16(0, &central); le16(0, &central)
            le16(0, &central); le16(0, &central); le32(crc, &central); le32(size32, &central); le32(size32, &central)
            le16(name.count, &central); le16(extra.count, &central); le16(0, &central); le16(0, &central); le16(0, &central)
            le32(0, &central); le32(zip64 ? 0xFFFF_FFFF : UInt32(offset), &central)
            central += name; central += extra
        }
        let cdOffset = out.count
        out += central
        if zip64 {
            let rec = out.count
            le32(0x0606_4b50, &out); le64(44, &out); le16(45, &out); le16(45, &out); le32(0, &out); le32(0, &out)
            le64(UInt64(members.count), &out); le64(UInt64(members.count), &out)
            le64(UInt64(central.count), &out); le64(UInt64(cdOffset), &out)
            le32(0x0706_4b50, &out); le32(0, &out); le64(UInt64(rec), &out); le32(1, &out)
        }
        le32(0x0605_4b50, &out); le16(0, &out); le16(0, &out)
        le16(zip64 ? 0xFFFF : members.count, &out); le16(zip64 ? 0xFFFF : members.count, &out)
        le32(zip64 ? 0xFFFF_FFFF : UInt32(central.count), &out); le32(zip64 ? 0xFFFF_FFFF : UInt32(cdOffset), &out)
        le16(0, &out)
        return out
    }

    /// A torch.save-style archive: `<archive>/data.pkl`, `byteorder`, and `data/<key>` storages.
    static func checkpoint(pickle: [UInt8], storages: [String: [UInt8]], archive: String = "archive",
                           zip64: Bool = false, recordCRC: Bool = true) -> [UInt8] {
        var members: [(String, [UInt8])] = [("\(archive)/data.pkl", pickle), ("\(archive)/byteorder", Array("little".utf8))]
        for k in storages.keys.sorted() { members.append(("\(archive)/data/\(k)", storages[k]!)) }
        members.append(("\(archive)/version", Array("3\n".utf8)))
        return build(members, zip64: zip64, recordCRC: recordCRC)
    }
}

func bytesOf<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

/// Writes the pre-1.6 `torch.save` format: magic, protocol version and sys_info
/// pickles, the object pickle, the storage key list, then each storage as an
/// int64 element count followed by its bytes.
enum LegacyTorchBuilder {
    static func build(pickle: [UInt8], storages: [(key: String, numel: Int, bytes: [UInt8])]) -> [UInt8] {
        var out = TorchLegacyFormat.magic
        var version = PickleBuilder(); version.int(1001); version.stop()
        var info = PickleBuilder()
        info.dict([("protocol_version", { $0.int(1001) }), ("little_endian", { $0.op(0x88) }),
                   ("type_sizes", { $0.dict([("short", { $0.int(2) }), ("int", { $0.int(4) }), ("long", { $0.int(8) })]) })])
        info.stop()
        var keys = PickleBuilder()
        keys.op(0x5D, 0x28)
        for s in storages { keys.string(s.key) }
        keys.op(0x65)
        keys.stop()
        out += version.bytes + info.bytes + pickle + keys.bytes
        for s in storages {
            withUnsafeBytes(of: Int64(s.numel).littleEndian) { out += $0 }
            out += s.bytes
        }
        return out
    }
}
