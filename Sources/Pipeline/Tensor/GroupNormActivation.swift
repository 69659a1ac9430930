import Foundation

extension Normalization {
    /// dst = act(GroupNorm(src)) on NCHW, out of place (src is left as it is, for a residual),
    /// with per-channel affine and an optional fused SiLU. Statistics as `groupNorm`: mean, then
    /// centred variance, biased, accumulated in double over float32 blocks.
    public static func groupNorm(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                                 batch: Int, channels: Int, spatial: Int, groups: Int, eps: Float,
                                 weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, silu: Bool) {
        precondition(channels % groups == 0, "groupNorm: \(channels) channels in \(groups) groups")
        let cpg = channels / groups
        let size = cpg * spatial
        parallelFor(batch * groups, grain: 1) { s, e in
            for ng in s..<e {
                let g = ng % groups
                let p = src + ng * size
                let mean = blockSum(p, size) { $0 } / Double(size)
                let mf = Float(mean)
                // Centre in float as the sum's blocks are float; the double total keeps it exact enough.
                let variance = blockSum(p, size) { let d = $0 - mf; return d * d } / Double(size)
                let inv = Float(1 / (variance + Double(eps)).squareRoot())
                for c in 0..<cpg {
                    let ch = g * cpg + c
                    let k = inv * (weight?[ch] ?? 1)
                    let off = (bias?[ch] ?? 0) - mf * k
                    let q = p + c * spatial
                    let d = dst + ng * size + c * spatial
                    affine(q, d, spatial, k, off, silu: silu)
                }
            }
        }
    }

    /// Σ f(p[i]) in double, summing eight float lanes per block of 256 numbers.
    @inline(__always)
    static func blockSum(_ p: UnsafePointer<Float>, _ n: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) -> Double {
        let raw = UnsafeRawPointer(p)
        var total: Double = 0
        var i = 0
        let whole = n & ~7
        while i < whole {
            let end = min(i + 256, whole)
            var acc = SIMD8<Float>.zero
            while i < end {
                acc += f(raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
                i += 8
            }
            total += Double(acc.sum())
        }
        while i < n {
            let v = f(SIMD8<Float>(repeating: p[i]))[0]
            total += Double(v)
            i += 1
        }
        return total
    }

    @inline(__always)
    static func affine(_ q: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ n: Int,
                       _ k: Float, _ off: Float, silu: Bool) {
        let rq = UnsafeRawPointer(q), rd = UnsafeMutableRawPointer(d)
        var i = 0
        if silu {
            while i + 8 <= n {
                let y = rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * k + off
                rd.storeBytes(of: y / (1 + VectorMath.exp(-y)), toByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { let y = q[i] * k + off; d[i] = y / (1 + expf(-y)); i += 1 }
        } else {
            while i + 8 <= n {
                let y = rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * k + off
                rd.storeBytes(of: y, toByteOffset: i * 4, as: SIMD8<Float>.self)
                i += 8
            }
            while i < n { d[i] = q[i] * k + off; i += 1 }
        }
    }
}
