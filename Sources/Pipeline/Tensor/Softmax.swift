import Foundation

public enum Softmax {
    /// Row-wise softmax in place, max-subtracted.
    public static func rows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        parallelFor(rows, grain: max(1, 4096 / max(width, 1))) { s, e in
            for r in s..<e { row(x + r * width, width: width) }
        }
    }

    @inline(__always)
    public static func row(_ p: UnsafeMutablePointer<Float>, width: Int) {
        var m = -Float.infinity
        for i in 0..<width { m = max(m, p[i]) }
        var sum: Float = 0
        for i in 0..<width { let v = expf(p[i] - m); p[i] = v; sum += v }
        let inv = 1 / sum
        for i in 0..<width { p[i] *= inv }
    }
}
