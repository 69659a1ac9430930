import Foundation

/// The softmax, max-subtracted, with eight-lane max and sum (`VectorMath`): one copy for every
/// layout (DiT and training attention rows, the VAE's channel-major attention).
public enum Softmax {
    /// Row-wise softmax in place over `rows` contiguous rows of `width`, rows in parallel.
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        parallelFor(rows, grain: max(1, 4096 / max(width, 1))) { s, e in
            for r in s..<e { row(x + r * width, width: width) }
        }
    }

    /// softmax of one row in place.
    @inline(__always)
    public static func row(_ p: UnsafeMutablePointer<Float>, width: Int) {
        let m = VectorMath.max(p, count: width)
        for i in 0..<width { p[i] = exp(p[i] - m) }
        let inv = 1 / VectorMath.sum(p, count: width)
        for i in 0..<width { p[i] *= inv }
    }
}
