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
                let (m, inv) = moments(p, width, eps: eps)
                if let weight, let bias {
                    for i in 0..<width { p[i] = (p[i] - m) * inv * weight[i] + bias[i] }
                } else {
                    for i in 0..<width { p[i] = (p[i] - m) * inv }
                }
            }
        }
    }

    /// Mean and 1/√(biased variance + eps) of n floats: mean, then centred variance,
    /// both accumulated in double, one element at a time.
    @inline(__always)
    static func moments(_ p: UnsafePointer<Float>, _ n: Int, eps: Float) -> (mean: Float, inverseStd: Float) {
        var mean: Double = 0
        for i in 0..<n { mean += Double(p[i]) }
        mean /= Double(n)
        var v: Double = 0
        for i in 0..<n { let d = Double(p[i]) - mean; v += d * d }
        v /= Double(n)
        return (Float(mean), Float(1 / (v + Double(eps)).squareRoot()))
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
                let (m, inv) = moments(p, size, eps: eps)
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
