import Foundation

/// Element types found in checkpoints.
public enum DType: String, CaseIterable, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    public var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .f64 }
}

/// Conversions from a raw little-endian buffer of `dtype` to float32/float64/int64.
public enum DTypeConvert {
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        Float(Float16(bitPattern: h))
    }

    @inline(__always)
    public static func bfloat16ToFloat(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// Converts `count` elements at `src` into float32 at `dst`.
    public static func toFloat32(_ src: UnsafeRawPointer, dtype: DType, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16:
            for i in 0..<count { dst[i] = halfToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16:
            for i in 0..<count { dst[i] = bfloat16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .f64:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
        case .i64:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
        case .i32:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
        case .i16:
            for i in 0..<count { dst[i] = Float(src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
        case .i8:
            for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool:
            for i in 0..<count { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    public static func toDouble(_ src: UnsafeRawPointer, dtype: DType, count: Int) -> [Double] {
        if dtype == .f64 {
            return (0..<count).map { src.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
        }
        var f = [Float](repeating: 0, count: count)
        f.withUnsafeMutableBufferPointer { toFloat32(src, dtype: dtype, count: count, into: $0.baseAddress!) }
        return f.map(Double.init)
    }

    public static func toInt64(_ src: UnsafeRawPointer, dtype: DType, count: Int) -> [Int64] {
        switch dtype {
        case .i64: return (0..<count).map { src.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
        case .i32: return (0..<count).map { Int64(src.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
        case .u8, .bool: return (0..<count).map { Int64(src.load(fromByteOffset: $0, as: UInt8.self)) }
        default:
            return toDouble(src, dtype: dtype, count: count).map { saturatingInt64($0.rounded()) }
        }
    }

    /// `Int64(d)` that never traps on a value read from a file: NaN is 0, values
    /// beyond the range saturate (`Int64(d)` traps on them, or is undefined with -Ounchecked).
    @inline(__always)
    public static func saturatingInt64(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d >= 9.223_372_036_854_775_807e18 { return .max }
        if d <= -9.223_372_036_854_775_808e18 { return .min }
        return Int64(d)
    }
}
