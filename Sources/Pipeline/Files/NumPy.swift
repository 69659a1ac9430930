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
        precondition(data.count == shape.reduce(1, *) * dtype.size, "npy: \(data.count) bytes do not hold \(shape) of \(dtype)")
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
            switch dtype {
            case .float32: DTypeConvert.toFloat32(base, dtype: .f32, count: count, into: t.data)
            case .float64: DTypeConvert.toFloat32(base, dtype: .f64, count: count, into: t.data)
            case .float16: DTypeConvert.toFloat32(base, dtype: .f16, count: count, into: t.data)
            case .int64: DTypeConvert.toFloat32(base, dtype: .i64, count: count, into: t.data)
            case .int32: DTypeConvert.toFloat32(base, dtype: .i32, count: count, into: t.data)
            case .uint8, .bool: DTypeConvert.toFloat32(base, dtype: .u8, count: count, into: t.data)
            }
        }
        return t
    }

    public func doubles() -> [Double] {
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return [] }
            switch dtype {
            case .float64: return DTypeConvert.toDouble(base, dtype: .f64, count: count)
            case .float32: return DTypeConvert.toDouble(base, dtype: .f32, count: count)
            case .float16: return DTypeConvert.toDouble(base, dtype: .f16, count: count)
            case .int64: return DTypeConvert.toDouble(base, dtype: .i64, count: count)
            case .int32: return DTypeConvert.toDouble(base, dtype: .i32, count: count)
            case .uint8, .bool: return DTypeConvert.toDouble(base, dtype: .u8, count: count)
            }
        }
    }

    public func int64s() -> [Int64] { doubles().map { Int64($0) } }

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
        guard let d = FileManager.default.contents(atPath: path) else {
            throw NPYError(file: path, reason: "cannot read file")
        }
        return try decode(d, file: path)
    }

    /// Parses the header; returns dtype, shape and the data offset.
    public static func parseHeader(_ d: Data, file: String) throws -> (NPYDType, [Int], Int) {
        let b = [UInt8](d.prefix(12))
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw NPYError(file: file, reason: "not a .npy file (bad magic)") }
        let major = b[6]
        let hlen: Int, pre: Int
        if major == 1 {
            hlen = Int(b[8]) | Int(b[9]) << 8; pre = 10
        } else if major == 2 || major == 3 {
            guard b.count >= 12 else { throw NPYError(file: file, reason: "truncated .npy header") }
            hlen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; pre = 12
        } else {
            throw NPYError(file: file, reason: "unsupported .npy version \(major)")
        }
        guard d.count >= pre + hlen else { throw NPYError(file: file, reason: "truncated .npy header") }
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
        }
        return (dtype, shape, pre + hlen)
    }

    public static func decode(_ d: Data, file: String) throws -> NPYArray {
        let (dtype, shape, offset) = try parseHeader(d, file: file)
        let (count, overflow) = shape.reduce((1, false)) { acc, v in
            let (m, o) = acc.0.multipliedReportingOverflow(by: v); return (m, acc.1 || o)
        }
        guard !overflow else { throw NPYError(file: file, reason: "shape \(shape) is too large") }
        let need = count * dtype.size
        guard d.count - offset >= need else {
            throw NPYError(file: file, reason: "truncated: \(shape) of \(dtype.rawValue) needs \(need) bytes, file has \(d.count - offset)")
        }
        let start = d.startIndex + offset
        return NPYArray(dtype: dtype, shape: shape, data: Data(d[start..<(start + need)]))
    }
}
