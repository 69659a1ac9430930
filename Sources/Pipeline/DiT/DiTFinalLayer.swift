import Foundation
import PipelineTensor
import PipelineWeights

/// `FinalLayer` (diffusers: `norm_out` + `proj_out_1` + `proj_out_2`):
///
///     shift, scale = adaLN_modulation(c).chunk(2)      # diffusers: proj_out_1(silu(c)).chunk(2), same order
///     x = linear(modulate(norm_final(x), shift, scale)) # norm eps 1e-6 in both
package struct DiTFinalLayer {
    package let adaLN: DiTLinear   // adaLN_modulation.1 (diffusers: proj_out_1), D → 2D
    package let linear: DiTLinear  // linear (diffusers: proj_out_2), D → p·p·outC
    let eps: Float = 1e-6

    init(_ sd: StateDict, config c: DiTConfig) throws {
        let d = c.hiddenSize, o = c.patchSize * c.patchSize * c.outChannels
        switch c.layout {
        case .reference:
            adaLN = try DiTLinear(sd, "final_layer.adaLN_modulation.1", in: d, out: 2 * d)
            linear = try DiTLinear(sd, "final_layer.linear", in: d, out: o)
        case .diffusers:
            adaLN = try DiTLinear(sd, "proj_out_1", in: d, out: 2 * d)
            linear = try DiTLinear(sd, "proj_out_2", in: d, out: o)
        }
    }

    /// (N·T, p·p·outC) patch outputs of the tokens `ws.x`, written to `out`.
    func callAsFunction(_ ws: DiTWorkspace, siluC: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let n = ws.batch, t = ws.tokens, d = adaLN.inFeatures
        adaLN(siluC, rows: n, into: ws.mod.data)
        DiTKernels.layerNormModulate(ws.x.data, out: ws.h.data, rows: n * t, width: d, tokensPerItem: t, eps: eps,
                                     shift: ws.mod.data, scale: ws.mod.data + d, modStride: 2 * d)
        linear(ws.h.data, rows: n * t, into: out)
    }

    func flops(batch n: Int, tokens t: Int) -> Double { adaLN.flops(rows: n) + linear.flops(rows: n * t) }
}
