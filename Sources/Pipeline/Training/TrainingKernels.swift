import Foundation
import PipelineTensor

/// Forward and backward passes of the elementwise pieces of a DiT block over (N·T, D)
/// token rows whose conditioning vectors (shift, scale, gate) belong to the batch item
/// (row / T) and sit `modStride` floats apart.
enum TrainingKernels {
    /// LayerNorm without affine (`elementwise_affine=False`), keeping x̂ and 1/σ per row for
    /// the backward pass. Two-pass float32 mean and centred variance, as the forward model.
    static func layerNorm(_ x: UnsafePointer<Float>, xhat: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                          rows: Int, width: Int, eps: Float) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width, o = xhat + r * width
                let mean = VectorMath.sum(p, count: width) / Float(width)
                for i in 0..<width { let d = p[i] - mean; o[i] = d * d }
                let inv = 1 / (VectorMath.sum(o, count: width) / Float(width) + eps).squareRoot()
                for i in 0..<width { o[i] = (p[i] - mean) * inv }
                rstd[r] = inv
            }
        }
    }

    /// dx (+)= (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)): the gradient of LayerNorm without affine.
    static func layerNormBackward(dxhat: UnsafePointer<Float>, xhat: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                  dx: UnsafeMutablePointer<Float>, rows: Int, width: Int, accumulate: Bool) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let g = dxhat + r * width, xh = xhat + r * width, o = dx + r * width
                var sg: Float = 0, sgx: Float = 0
                for i in 0..<width { sg += g[i]; sgx += g[i] * xh[i] }
                let mg = sg / Float(width), mgx = sgx / Float(width), inv = rstd[r]
                if accumulate {
                    for i in 0..<width { o[i] += inv * (g[i] - mg - xh[i] * mgx) }
                } else {
                    for i in 0..<width { o[i] = inv * (g[i] - mg - xh[i] * mgx) }
                }
            }
        }
    }

    /// `modulate(x, shift, scale)` = x·(1 + scale) + shift.
    static func modulate(_ xhat: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, width: Int,
                         tokensPerItem t: Int, shift: UnsafePointer<Float>, scale: UnsafePointer<Float>, modStride: Int) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = xhat + r * width, o = out + r * width
                let sh = shift + (r / t) * modStride, sc = scale + (r / t) * modStride
                for i in 0..<width { o[i] = p[i] * (1 + sc[i]) + sh[i] }
            }
        }
    }

    /// Backward of `modulate`: dx̂ = dh·(1 + scale); dshift[n] += Σ_t dh, dscale[n] += Σ_t dh·x̂.
    static func modulateBackward(dh: UnsafePointer<Float>, xhat: UnsafePointer<Float>, dxhat: UnsafeMutablePointer<Float>,
                                 rows: Int, width: Int, tokensPerItem t: Int, scale: UnsafePointer<Float>,
                                 dshift: UnsafeMutablePointer<Float>, dscale: UnsafeMutablePointer<Float>, modStride: Int) {
        let items = rows / t
        parallelFor(items, grain: 1) { s, e in
            for n in s..<e {
                let sc = scale + n * modStride, dsh = dshift + n * modStride, dsc = dscale + n * modStride
                for r in (n * t)..<((n + 1) * t) {
                    let g = dh + r * width, xh = xhat + r * width, o = dxhat + r * width
                    for i in 0..<width {
                        dsh[i] += g[i]
                        dsc[i] += g[i] * xh[i]
                        o[i] = g[i] * (1 + sc[i])
                    }
                }
            }
        }
    }

    /// x += gate · y (y already holds its bias).
    static func gatedResidual(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                              modStride: Int, rows: Int, width: Int, tokensPerItem t: Int) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width, q = y + r * width, g = gate + (r / t) * modStride
                for i in 0..<width { p[i] += g[i] * q[i] }
            }
        }
    }

    /// Backward of `x + gate·y`: dy = dx·gate, dgate[n] += Σ_t dx·y (dx itself passes through).
    static func gatedResidualBackward(dx: UnsafePointer<Float>, y: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                      dy: UnsafeMutablePointer<Float>, dgate: UnsafeMutablePointer<Float>,
                                      modStride: Int, rows: Int, width: Int, tokensPerItem t: Int) {
        parallelFor(rows / t, grain: 1) { s, e in
            for n in s..<e {
                let g = gate + n * modStride, dg = dgate + n * modStride
                for r in (n * t)..<((n + 1) * t) {
                    let d = dx + r * width, q = y + r * width, o = dy + r * width
                    for i in 0..<width {
                        dg[i] += d[i] * q[i]
                        o[i] = d[i] * g[i]
                    }
                }
            }
        }
    }

    /// GELU-tanh in place, keeping the pre-activation in `pre`.
    static func geluTanh(_ x: UnsafeMutablePointer<Float>, pre: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 16384) { s, e in
            for i in s..<e {
                pre[i] = x[i]
                x[i] = VectorMath.geluTanh(x[i])
            }
        }
    }

    /// d/dx of 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    @inline(__always)
    static func geluTanhDerivative(_ x: Float) -> Float {
        let c: Float = 0.7978845608028654
        let th = tanhf(c * (x + 0.044715 * x * x * x))
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x)
    }

    /// d/dx of x·sigmoid(x).
    @inline(__always)
    static func siluDerivative(_ x: Float) -> Float {
        let s = 1 / (1 + expf(-x))
        return s * (1 + x * (1 - s))
    }

    /// Column sums of `rows` rows added to `out`.
    static func addColumnSums(_ x: UnsafePointer<Float>, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let p = x + r * width
            for i in 0..<width { out[i] += p[i] }
        }
    }
}
