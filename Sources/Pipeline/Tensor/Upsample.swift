import Foundation

extension Tensor {
    /// Nearest-neighbour up-sampling of NCHW by an integer factor
    /// (`F.interpolate(x, scale_factor=s, mode="nearest")`): out[y][x] = in[y / s][x / s].
    public func upsampleNearest(scale s: Int) -> Tensor {
        precondition(rank == 4 && s >= 1, "upsampleNearest: input \(shape), scale \(s)")
        let nc = shape[0] * shape[1], h = shape[2], w = shape[3]
        let out = Tensor(uninitialized: [shape[0], shape[1], h * s, w * s])
        let src = data, dst = out.data
        let ow = w * s
        parallelFor(nc * h, grain: max(1, 16384 / max(ow * s, 1))) { lo, hi in
            for row in lo..<hi {
                let sp = src + row * w
                let dp = dst + row * s * ow          // first of the s output rows of this input row
                if s == 2 {
                    for x in 0..<w { let v = sp[x]; dp[2 * x] = v; dp[2 * x + 1] = v }
                } else {
                    for x in 0..<w { (dp + x * s).update(repeating: sp[x], count: s) }
                }
                for r in 1..<s { (dp + r * ow).update(from: dp, count: ow) }
            }
        }
        return out
    }
}
