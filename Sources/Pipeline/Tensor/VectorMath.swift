import Foundation

/// Transcendental kernels for the hot elementwise passes (softmax, GELU), written as
/// branch-free scalar code that LLVM's loop vectoriser turns into packed SIMD. (Swift's
/// generic `SIMD16` helpers — `clamped`, shifts, bit casts — compile to scalar loops,
/// an order of magnitude slower.) Accurate to a couple of float ulps, the level at which
/// PyTorch's vectorised Sleef kernels differ from libm anyway.
public enum VectorMath {
    /// e^x (Cephes `expf` polynomial; 2^n built in the exponent bits). Inputs are clamped to
    /// [-87.3, 88.3], so 2^n stays a normal float: below, the result is ~1e-38 rather
    /// than a denormal or 0; above, ~2e38 rather than inf.
    @inline(__always)
    public static func exp(_ xIn: Float) -> Float {
        let x = Swift.min(Swift.max(xIn, -87.3), 88.3)
        // n = round(x / ln 2) via the 1.5·2^23 trick: the sum's low mantissa bits hold n.
        let magic: Float = 12582912
        let t = x * 1.44269504088896341 + magic
        let n = t - magic
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let e = p * (r * r) + r + 1
        let bits = (t.bitPattern &+ (127 &- 0x4B40_0000)) &<< 23
        return e * Float(bitPattern: bits)
    }

    /// GELU, tanh approximation, as x·σ(2z) with z = √(2/π)(x + 0.044715x³):
    /// 0.5·(1 + tanh z) = 1/(1 + e^(−2z)), the same function to float rounding.
    @inline(__always)
    public static func geluTanh(_ x: Float) -> Float {
        let z: Float = -2 * 0.7978845608028654 * (x + 0.044715 * x * x * x)
        return x / (1 + exp(z))
    }

    /// x[r, i] = gelu_tanh(x[r, i] + bias[i]) over `rows` rows of `width`, threaded.
    public static func biasGeluTanh(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                                    bias: UnsafePointer<Float>) {
        parallelFor(rows, grain: Swift.max(1, 16384 / Swift.max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width
                for i in 0..<width { p[i] = geluTanh(p[i] + bias[i]) }
            }
        }
    }

    /// max x[i] (−∞ for none) with eight-lane partial maxima (a scalar `max` loop does not vectorise).
    @inline(__always)
    public static func max(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.replace(with: v, where: v .> acc)
            i += 8
        }
        var m = acc.max()
        while i < count { m = Swift.max(m, p[i]); i += 1 }
        return m
    }

    /// Σ x[i] with eight-lane partial sums.
    @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= count { acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self); i += 8 }
        var s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        while i < count { s += p[i]; i += 1 }
        return s
    }
}
