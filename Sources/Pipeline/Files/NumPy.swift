import Foundation
import PipelineTensor

/// Element types of .npy files this project reads and writes.
public enum NPYDType: String, CaseIterable {
    case float32 = "<f4", float64 = "<f8", uint8 = "|u1", int64 = "<i8", int32 = "<i4", float16 = "<f2", bool = "|b1"

    public var size: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16: return 2
        case .uint8, .bool: return 1
        }
    }

    /// The same element type as the converters (`DTypeConvert`) name it; bool is read as bytes.
    var elementType: DType {
        switch self {
        case .float32: return .f32
        case .float64: return .f64
        case .float16: return .f16
        case .int64: return .i64
        case .int32: return .i32
        case .uint8, .bool: return .u8
        }
    }

    /// Accepts numpy's spellings of the same type ("<f4", "f4", "=f4" on little-endian, "u1", "<u1").
    init?(descr: String) {
        var d = descr
        if d.hasPrefix("=") { d = "<" + d.dropFirst() }
        if let v = NPYDType(rawValue: d) { self = v; return }
        switch d {
        case "f4": self = .float32
        case "f8": self = .float64
        case "u1", "<u1": self = .uint8
        case "i8": self = .int64
        case "i4": self = .int32
        case "f2": self = .float16
        case "?", "b1", "<b1": self = .bool
        default: return nil
        }
    }
}

public struct NPYError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public var description: String { "\(file): \(reason)" }
}

/// A NumPy array as stored in a .npy file: C-order data of one element type.
public struct NPYArray {
    public var dtype: NPYDType
    public var shape: [Int]
    public var data: Data

    public init(dtype: NPYDType, shape: [Int], data: Data) {
        precondition(NPY.byteCount(shape: shape, dtype: dtype) == data.count, "npy: \(data.count) bytes do not hold \(shape) of \(dtype)")
        self.dtype = dtype; self.shape = shape; self.data = data
    }

    public init(_ t: Tensor) {
        self.init(dtype: .float32, shape: t.shape, data: Data(bytes: t.data, count: t.count * 4))
    }

    public init(float64 values: [Double], shape: [Int]) {
        self.init(dtype: .float64, shape: shape, data: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(int64 values: [Int64], shape: [Int]) {
        self.init(dtype: .int64, shape: shape, data: values.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    public init(uint8 values: [UInt8], shape: [Int]) {
        self.init(dtype: .uint8, shape: shape, data: Data(values))
    }

    public var count: Int { shape.reduce(1, *) }

    /// As float32 (float64/int/uint8 converted).
    public func tensor() -> Tensor {
        let t = Tensor(uninitialized: shape)
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            DTypeConvert.toFloat32(base, dtype: dtype.elementType, count: count, into: t.data)
        }
        return t
    }

    public func doubles() -> [Double] {
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            return DTypeConvert.toDouble(base, dtype: dtype.elementType, count: count)
        }
    }

    /// As int64: integer types exactly, floats truncated (saturating, NaN as 0: file data never traps).
    public func int64s() -> [Int64] {
        if dtype.elementType.isFloat { return doubles().map(DTypeConvert.saturatingInt64) }
        return data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            return DTypeConvert.toInt64(base, dtype: dtype.elementType, count: count)
        }
    }

    public var bytes: [UInt8] { [UInt8](data) }
}

/// The .npy format (NEP 1): magic, version, little-endian header length, a
/// Python-dict header padded to 64 bytes, then the raw C-order data.
public enum NPY {
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// The header bytes (magic through padding) for an array of this type and shape.
    public static func header(dtype: NPYDType, shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        let v1 = 10 + dict.utf8.count + 1 <= 65535 + 10
        let pre = v1 ? 10 : 12
        let total = ((pre + dict.utf8.count + 1 + 63) / 64) * 64
        dict += String(repeating: " ", count: total - pre - dict.utf8.count - 1) + "\n"
        var out = Data(magic)
        if v1 {
            out.append(contentsOf: [1, 0])
            var n = UInt16(dict.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        } else {
            out.append(contentsOf: [2, 0])
            var n = UInt32(dict.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: Array(dict.utf8))
        return out
    }

    public static func encode(_ a: NPYArray) -> Data {
        var out = header(dtype: a.dtype, shape: a.shape)
        out.append(a.data)
        return out
    }

    public static func write(_ a: NPYArray, to path: String) throws {
        try AtomicFile.write(encode(a), to: path)
    }

    public static func read(_ path: String) throws -> NPYArray {
        try decode(try readRegularFile(path), file: path)
    }

    /// The whole file, which must be a regular file (a FIFO or device is refused
    /// without blocking, and nothing past the size `fstat` gave is read).
    static func readRegularFile(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw NPYError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw NPYError(file: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw NPYError(file: path, reason: "empty file, not a .npy file") }
        var d = Data(count: size)
        do {
            try d.withUnsafeMutableBytes { try ZipDirectory.preadFully(fd: fd, $0.baseAddress!, at: 0, count: size, file: path) }
        } catch let e as ZipError {
            throw NPYError(file: path, reason: e.reason)
        }
        return d
    }

    /// NumPy's own limit on dimensions (NPY_MAXDIMS in NumPy 2).
    public static let maxDims = 64
    /// Header dicts longer than this are refused (NumPy's `np.load` refuses more than 10000 bytes).
    public static let maxHeaderLength = 1 << 20

    /// `product(shape) * itemsize`, or nil when it does not fit an Int (a hostile
    /// shape such as (2**62,) of float64 must be an error, not a wrap to 0).
    public static func byteCount(shape: [Int], dtype: NPYDType) -> Int? {
        var n = dtype.size
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = m
        }
        return n
    }

    /// Checked byte count, with an error naming `file` and the header's shape and dtype.
    static func checkedByteCount(shape: [Int], dtype: NPYDType, file: String) throws -> Int {
        guard let n = byteCount(shape: shape, dtype: dtype) else {
            throw NPYError(file: file, reason: "header 'shape' \(shape) of '\(dtype.rawValue)' is too large (its byte count overflows)")
        }
        return n
    }

    /// Bytes before the header dict (10 for version 1, 12 for 2 and 3) by the
    /// version byte `major`, or an error.
    static func preambleLength(major: UInt8, file: String) throws -> Int {
        switch major {
        case 1: return 10
        case 2, 3: return 12
        default: throw NPYError(file: file, reason: "unsupported .npy version \(major)")
        }
    }

    /// The header dict's length from a preamble of `preambleLength` bytes, checked.
    static func headerLength(_ b: [UInt8], file: String) throws -> Int {
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw NPYError(file: file, reason: "not a .npy file (bad magic)") }
        let pre = try preambleLength(major: b[6], file: file)
        guard b.count >= pre else { throw NPYError(file: file, reason: "truncated .npy header") }
        var hlen = Int(b[8]) | Int(b[9]) << 8
        if pre == 12 { hlen |= Int(b[10]) << 16 | Int(b[11]) << 24 }
        // The shortest dict NumPy accepts ("{'descr':'|u1','fortran_order':False,'shape':()}") is far longer.
        guard hlen >= 16 else { throw NPYError(file: file, reason: "header length \(hlen) is too short for a header dict") }
        guard hlen <= maxHeaderLength else {
            throw NPYError(file: file, reason: "header length \(hlen) exceeds \(maxHeaderLength) bytes")
        }
        return hlen
    }

    /// Parses the header; returns dtype, shape and the data offset.
    public static func parseHeader(_ d: Data, file: String) throws -> (NPYDType, [Int], Int) {
        let b = [UInt8](d.prefix(12))
        let hlen = try headerLength(b, file: file)
        let pre = try preambleLength(major: b[6], file: file)
        guard d.count - pre >= hlen else { throw NPYError(file: file, reason: "truncated .npy header") }
        let start = d.startIndex
        guard let text = String(data: d[(start + pre)..<(start + pre + hlen)], encoding: .utf8) ?? String(data: d[(start + pre)..<(start + pre + hlen)], encoding: .isoLatin1) else {
            throw NPYError(file: file, reason: "unreadable .npy header")
        }
        func value(_ key: String) -> Substring? {
            guard let r = text.range(of: "'\(key)':") else { return nil }
            return text[r.upperBound...].drop(while: { $0 == " " })
        }
        guard let descrPart = value("descr"), descrPart.first == "'" || descrPart.first == "\"" else {
            throw NPYError(file: file, reason: ".npy header lacks descr")
        }
        let q = descrPart.first!
        let descr = String(descrPart.dropFirst().prefix(while: { $0 != q }))
        guard let dtype = NPYDType(descr: descr) else {
            throw NPYError(file: file, reason: "unsupported .npy dtype '\(descr)'")
        }
        if let fo = value("fortran_order"), fo.hasPrefix("True") {
            throw NPYError(file: file, reason: "Fortran-order .npy arrays are not supported")
        }
        guard let sp = value("shape"), sp.first == "(", let close = sp.firstIndex(of: ")") else {
            throw NPYError(file: file, reason: ".npy header lacks shape")
        }
        let inner = sp[sp.index(after: sp.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let s = part.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            guard let v = Int(s.hasSuffix("L") ? String(s.dropLast()) : s), v >= 0 else {
                throw NPYError(file: file, reason: "bad .npy shape '\(inner)'")
            }
            shape.append(v)
            guard shape.count <= maxDims else { throw NPYError(file: file, reason: "header 'shape' has more than \(maxDims) dimensions") }
        }
        return (dtype, shape, pre + hlen)
    }

    public static func decode(_ d: Data, file: String) throws -> NPYArray {
        let (dtype, shape, offset) = try parseHeader(d, file: file)
        let need = try checkedByteCount(shape: shape, dtype: dtype, file: file)
        guard d.count - offset >= need else {
            throw NPYError(file: file, reason: "truncated: header 'shape' \(shape) of '\(dtype.rawValue)' needs \(need) bytes, the file has \(d.count - offset)")
        }
        let start = d.startIndex + offset
        return NPYArray(dtype: dtype, shape: shape, data: Data(d[start..<(start + need)]))
    }
}
