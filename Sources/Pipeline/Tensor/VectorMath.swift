import Foundation

/// Vectorised transcendental kernels for the elementwise hot loops.
public enum VectorMath {
    /// e^x for eight lanes (Cephes `expf` range reduction and polynomial, relative error
    /// below 2e-7 on [−87, 88]; inputs are clamped to that range).
    @inline(__always)
    public static func exp(_ v: SIMD8<Float>) -> SIMD8<Float> {
        var x = v.clamped(lowerBound: SIMD8(repeating: -87.3), upperBound: SIMD8(repeating: 88.3))
        // n = round(x / ln 2), by truncation of a positive-shifted value (no SSE4.1 floor needed).
        let shifted = x * 1.44269504088896341 + 0.5 + 127
        let ni = SIMD8<Int32>(shifted, rounding: .towardZero)   // shifted > 0: truncation = floor
        let fx = SIMD8<Float>(ni) - 127
        x = x - fx * 0.693359375 + fx * 2.12194440e-4
        let z = x * x
        var y = SIMD8<Float>(repeating: 1.9875691500e-4)
        y = y * x + 1.3981999507e-3
        y = y * x + 8.3334519073e-3
        y = y * x + 4.1665795894e-2
        y = y * x + 1.6666665459e-1
        y = y * x + 5.0000001201e-1
        y = y * z + x + 1
        let pow2 = unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: ni) &<< 23, to: SIMD8<Float>.self)
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
