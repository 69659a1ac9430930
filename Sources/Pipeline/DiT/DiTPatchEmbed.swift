import Foundation
import PipelineTensor
import PipelineWeights

/// timm's `PatchEmbed` (`x_embedder`; diffusers: `pos_embed`): a conv with
/// kernel = stride = patch, run as one GEMM over the whole batch (patch rows
/// (N·T, C·p·p) times the kernel viewed as (D, C·p·p)), tokens in row-major grid order.
package struct PatchEmbed {
    package let proj: DiTLinear  // proj.weight (D, C, p, p) viewed as (D, C·p·p), proj.bias
    let patchSize: Int
    let inChannels: Int

    init(_ sd: StateDict, config c: DiTConfig) throws {
        let w = try sd.take("proj.weight", shape: [c.hiddenSize, c.inChannels, c.patchSize, c.patchSize])
        let b = try sd.take("proj.bias", shape: [c.hiddenSize])
        proj = DiTLinear(weight: w.reshaped([c.hiddenSize, -1]), bias: b)
        patchSize = c.patchSize
        inChannels = c.inChannels
    }

    /// Writes (N·T, D) tokens = conv(x) + bias + pos to `out`; `pos` is (T, D).
    func callAsFunction(_ x: Tensor, pos: Tensor, into out: UnsafeMutablePointer<Float>, patches: UnsafeMutablePointer<Float>) {
        let n = x.shape[0], c = inChannels, h = x.shape[2], w = x.shape[3], p = patchSize
        let gh = h / p, gw = w / p, t = gh * gw, k = c * p * p, d = proj.outFeatures
        let src = x.data
        // im2col without overlap: row (item, gi, gj), column (channel, ki, kj).
        parallelFor(n * gh, grain: 1) { s, e in
            for ng in s..<e {
                let item = ng / gh, gi = ng % gh
                for gj in 0..<gw {
                    let row = patches + ((item * gh + gi) * gw + gj) * k
                    for ch in 0..<c {
                        for ki in 0..<p {
                            let from = src + ((item * c + ch) * h + gi * p + ki) * w + gj * p
                            (row + (ch * p + ki) * p).update(from: from, count: p)
                        }
                    }
                }
            }
        }
        let bias = proj.bias.data, pe = pos.data
        parallelFor(n * t, grain: max(1, 16384 / d)) { s, e in
            for r in s..<e {
                let o = out + r * d, q = pe + (r % t) * d
                for i in 0..<d { o[i] = q[i] + bias[i] }
            }
        }
        BLAS.sgemmSplit(transB: true, m: n * t, n: d, k: k, a: patches, lda: k,
                        b: proj.weight.data, ldb: k, beta: 1, c: out, ldc: d)
    }
}

/// The fixed 2-D sin-cos position embedding (MAE's `get_2d_sincos_pos_embed`), (T, D).
enum PositionEmbedding {
    /// Computed as the reference does: positions as float32 grid values, ω in float64,
    /// sin/cos in float64, rounded to float32 at the end. Quirk kept from MAE: the first
    /// half of the channels encodes the *column* (w) coordinate — `np.meshgrid(grid_w, grid_h)`
    /// puts w first and that plane is passed as "grid_h" — and the second half the row.
    /// diffusers' torch version computes the same numbers (float64 `torch.outer`).
    static func sincos2D(embedDim d: Int, gridSize g: Int) throws -> Tensor {
        guard d % 4 == 0 else {
            throw DiTError.badInput("hidden size \(d) must be a multiple of 4 for the 2-D sin-cos position embedding")
        }
        let (t, o1) = g.multipliedReportingOverflow(by: g)
        let (n, o2) = t.multipliedReportingOverflow(by: d)
        guard g >= 0, !o1, !o2, n <= DiTLimits.maxTokens * DiTLimits.maxHiddenSize else {
            throw DiTError.badInput("a \(g)×\(g) grid of \(d)-channel position embeddings is too large")
        }
        let half = d / 2, quarter = d / 4
        let omega: [Double] = (0..<quarter).map { i in 1.0 / Foundation.pow(10000.0, Double(i) / (Double(half) / 2)) }
        let out = Tensor(uninitialized: [g * g, d])
        for i in 0..<g {          // row (h)
            for j in 0..<g {      // column (w)
                let row = out.data + (i * g + j) * d
                for (pos, base) in [(Double(j), 0), (Double(i), half)] {
                    for k in 0..<quarter {
                        let a = pos * omega[k]
                        row[base + k] = Float(Foundation.sin(a))
                        row[base + quarter + k] = Float(Foundation.cos(a))
                    }
                }
            }
        }
        return out
    }
}

/// `unpatchify`: (N, T, p·p·C) tokens → (N, C, H, W) via einsum('nhwpqc->nchpwq').
package enum Unpatchify {
    package static func apply(_ y: UnsafePointer<Float>, batch n: Int, grid g: Int, patch p: Int, channels c: Int) -> Tensor {
        let side = g * p
        let out = Tensor(uninitialized: [n, c, side, side])
        let o = out.data
        parallelFor(n * g, grain: 1) { s, e in
            for ng in s..<e {
                let item = ng / g, gi = ng % g
                for gj in 0..<g {
                    let tok = y + ((item * g + gi) * g + gj) * p * p * c
                    for pi in 0..<p {
                        for qi in 0..<p {
                            let v = tok + (pi * p + qi) * c
                            for ch in 0..<c {
                                o[((item * c + ch) * side + gi * p + pi) * side + gj * p + qi] = v[ch]
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
