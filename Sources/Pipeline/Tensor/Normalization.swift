import Foundation

/// Normalisations over float32 rows, accumulated in float32 two-pass form
/// (mean, then centred variance) as PyTorch's CPU kernels do.
public enum Normalization {
    /// LayerNorm over the last `width` numbers of each of `rows` rows, in place;
    /// optional affine weight and bias.
    public static func layerNorm(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, eps: Float,
                                 weight: UnsafePointer<Float>? = nil, bias: UnsafePointer<Float>? = nil) {
        parallelFor(rows, grain: max(1, 8192 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width
                var mean: Double = 0
                for i in 0..<width { mean += Double(p[i]) }
                mean /= Double(width)
                var v: Double = 0
                for i in 0..<width { let d = Double(p[i]) - mean; v += d * d }
                v /= Double(width)
                let inv = Float(1 / (v + Double(eps)).squareRoot())
                let m = Float(mean)
                if let weight, let bias {
                    for i in 0..<width { p[i] = (p[i] - m) * inv * weight[i] + bias[i] }
                } else {
                    for i in 0..<width { p[i] = (p[i] - m) * inv }
                }
            }
        }
    }

    /// GroupNorm on NCHW (`nn.GroupNorm`), in place, with per-channel affine.
    public static func groupNorm(_ x: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                 groups: Int, eps: Float,
                                 weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?) {
        precondition(channels % groups == 0, "groupNorm: \(channels) channels in \(groups) groups")
        let cpg = channels / groups
        let size = cpg * spatial
        parallelFor(batch * groups, grain: 1) { s, e in
            for ng in s..<e {
                let g = ng % groups
                let p = x + ng * size
                var mean: Double = 0
                for i in 0..<size { mean += Double(p[i]) }
                mean /= Double(size)
                var v: Double = 0
                for i in 0..<size { let d = Double(p[i]) - mean; v += d * d }
                v /= Double(size)
                let inv = Float(1 / (v + Double(eps)).squareRoot())
                let m = Float(mean)
                for c in 0..<cpg {
                    let ch = g * cpg + c
                    let w = weight?[ch] ?? 1, b = bias?[ch] ?? 0
                    let q = p + c * spatial
                    let k = inv * w
                    let off = b - m * k
                    for i in 0..<spatial { q[i] = q[i] * k + off }
                }
            }
        }
    }
}

extension Tensor {
    /// LayerNorm over the last dimension (copying).
    public func layerNorm(eps: Float, weight: Tensor? = nil, bias: Tensor? = nil) -> Tensor {
        let o = copy()
        let w = shape.last ?? 1
        Normalization.layerNorm(o.data, rows: count / w, width: w, eps: eps, weight: weight?.data, bias: bias?.data)
        return o
    }
}
