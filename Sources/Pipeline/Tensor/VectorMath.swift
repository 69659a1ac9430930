import Foundation

/// Vectorised transcendental kernels for the hot elementwise passes (softmax,
/// GELU). Accurate to a couple of float ulps, which is the level at which the
/// reference (PyTorch's vectorised Sleef kernels) differs from libm anyway.
public enum VectorMath {
    public typealias V = SIMD16<Float>
    public static let width = 16

    /// e^x for 16 lanes (Cephes `expf` polynomial, 2^n built in the exponent bits).
    /// Inputs are clamped to [-87.3, 88.7]: below that the result is ~1e-38
    /// rather than a denormal or 0, which no caller can tell apart.
    @inline(__always)
    public static func exp(_ xIn: V) -> V {
        let x = xIn.clamped(lowerBound: V(repeating: -87.3), upperBound: V(repeating: 88.7))
        // n = round(x / ln 2) via the 1.5·2^23 trick: the sum's low mantissa bits hold n.
        let magic = V(repeating: 12582912)
        let t = x * V(repeating: 1.44269504088896341) + magic
        let n = t - magic
        var r = x - n * V(repeating: 0.693359375)
        r = r - n * V(repeating: -2.12194440e-4)
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + V(repeating: 1.3981999507e-3)
        p = p * r + V(repeating: 8.3334519073e-3)
        p = p * r + V(repeating: 4.1665795894e-2)
        p = p * r + V(repeating: 1.6666665459e-1)
        p = p * r + V(repeating: 5.0000001201e-1)
        let e = p * (r * r) + r + V(repeating: 1)
        let bits = unsafeBitCast(t, to: SIMD16<UInt32>.self)
        let pow2 = (bits &+ SIMD16<UInt32>(repeating: 127 &- 0x4B40_0000)) &<< SIMD16<UInt32>(repeating: 23)
        return e * unsafeBitCast(pow2, to: V.self)
    }

    /// Scalar e^x with the same polynomial (tails of vector loops).
    @inline(__always)
    public static func exp(_ x: Float) -> Float {
        exp(V(repeating: x))[0]
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// GELU, tanh approximation, written as x·σ(2z) with z = √(2/π)(x + 0.044715x³):
    /// 0.5·(1 + tanh z) = 1/(1 + e^(−2z)), the same function to float rounding.
    @inline(__always)
    public static func geluTanh(_ x: V) -> V {
        let k = V(repeating: -2 * 0.7978845608028654)
        let z = k * (x + V(repeating: 0.044715) * x * x * x)
        return x / (V(repeating: 1) + exp(z))
    }

    /// out[i] = gelu_tanh(x[i] + bias[i % width]) over `rows` rows of `width`, threaded.
    public static func biasGeluTanh(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                                    bias: UnsafePointer<Float>?) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width
                var i = 0
                while i + width16 <= width {
                    var v = load(p + i)
                    if let bias { v += load(bias + i) }
                    store(geluTanh(v), p + i)
                    i += width16
                }
                while i < width {
                    var v = p[i]
                    if let bias { v += bias[i] }
                    p[i] = geluTanh(V(repeating: v))[0]
                    i += 1
                }
            }
        }
    }

    private static let width16 = 16

    /// Row-wise softmax in place (max-subtracted), vectorised exp.
    @inline(__always)
    public static func softmaxRow(_ p: UnsafeMutablePointer<Float>, width: Int) {
        var i = 0
        var mv = V(repeating: -.infinity)
        while i + width16 <= width { mv = pointwiseMax(mv, load(p + i)); i += width16 }
        var m = mv.max()
        while i < width { m = Swift.max(m, p[i]); i += 1 }
        let mb = V(repeating: m)
        var sv = V(repeating: 0)
        i = 0
        while i + width16 <= width {
            let e = exp(load(p + i) - mb)
            store(e, p + i)
            sv += e
            i += width16
        }
        var sum = sv.sum()
        while i < width { let e = exp(p[i] - m); p[i] = e; sum += e; i += 1 }
        let inv = V(repeating: 1 / sum)
        let invS = 1 / sum
        i = 0
        while i + width16 <= width { store(load(p + i) * inv, p + i); i += width16 }
        while i < width { p[i] *= invS; i += 1 }
    }
}
