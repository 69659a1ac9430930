import Foundation

/// Eight-lane forms of the `VectorMath` kernels, for loops written over `SIMD8` (the VAE's
/// fused GroupNorm + SiLU). Every step is a plain lane operation (no `clamped`, no generic
/// float↔int conversions, which compile to out-of-line or scalar code).
extension VectorMath {
    /// e^x for eight lanes (Cephes `expf` range reduction and polynomial, relative error
    /// below 2e-7 on [−87, 88]; inputs are clamped to that range). The integer part is found
    /// with the 1.5·2²³ rounding trick so that every step is a plain SSE2 lane operation.
    @inline(__always)
    public static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        // Clamp by masks (`clamped` compiles to out-of-line calls).
        var x = v.replacing(with: -87.3, where: v .< -87.3)
        x.replace(with: 88.3, where: x .> 88.3)
        let magic: Float = 12582912                       // 1.5 · 2²³: adding it rounds to an integer
        let t = x * 1.44269504088896341 + magic
        let fx = t - magic                                // n = round(x / ln 2)
        x = x - fx * 0.693359375 + fx * 2.12194440e-4     // r = x − n·ln 2 in two parts
        let z = x * x
        var y = SIMD8<Float>(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        // 2ⁿ from n in the low mantissa bits of t.
        let n = unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000
        let pow2 = unsafeBitCast((n &+ 127) &<< 23, to: SIMD8<Float>.self)
        return y * pow2
    }

    /// x·sigmoid(x) in place (`nn.SiLU`), eight lanes at a time.
    public static func silu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 32768) { s, e in siluRange(p, s, e) }
    }

    @inline(__always)
    static func siluRange(_ p: UnsafeMutablePointer<Float>, _ s: Int, _ e: Int) {
        var i = s
        let raw = UnsafeMutableRawPointer(p)
        while i + 8 <= e {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: v / (1 + exp(-v)), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < e { let v = p[i]; p[i] = v / (1 + expf(-v)); i += 1 }
    }
}
