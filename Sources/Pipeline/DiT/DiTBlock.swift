import Foundation
import PipelineTensor
import PipelineWeights

/// timm's `Attention` (diffusers: `attn1`): fused qkv projection, softmax(q·kᵀ/√d)·v
/// per head, output projection.
package struct DiTAttention {
    package let qkv: DiTLinear   // qkv (diffusers: to_q, to_k, to_v stacked in that order)
    package let proj: DiTLinear  // proj (diffusers: to_out.0)
    package let heads: Int

    init(_ sd: StateDict, layout: DiTKeyLayout, hiddenSize d: Int, heads: Int) throws {
        self.heads = heads
        switch layout {
        case .reference:
            qkv = try DiTLinear(sd, "qkv", in: d, out: 3 * d)
            proj = try DiTLinear(sd, "proj", in: d, out: d)
        case .diffusers:
            qkv = DiTLinear(stacking: try ["to_q", "to_k", "to_v"].map { try DiTLinear(sd, $0, in: d, out: d) })
            proj = try DiTLinear(sd, "to_out.0", in: d, out: d)
        }
    }

    /// Multi-head attention of (N·T, 3D) packed q|k|v into (N·T, D) (`Attention.packed`).
    static func attend(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Int, tokens t: Int,
                       dim d: Int, heads: Int) {
        Attention.packed(qkv: qkv, out: out, batch: batch, tokens: t, dim: d, heads: heads)
    }

    /// 2·(q·kᵀ) + 2·(p·v) multiply-adds over all heads.
    static func flops(batch: Int, tokens t: Int, dim d: Int) -> Double {
        Attention.packedFlops(batch: batch, tokens: t, dim: d)
    }
}

/// timm's `Mlp` with `GELU(approximate="tanh")` (diffusers: `ff` = `FeedForward`).
package struct DiTMLP {
    package let fc1: DiTLinear  // fc1 (diffusers: net.0.proj)
    package let fc2: DiTLinear  // fc2 (diffusers: net.2)

    init(_ sd: StateDict, layout: DiTKeyLayout, hiddenSize d: Int, mlpHidden m: Int) throws {
        let names = layout == .reference ? ("fc1", "fc2") : ("net.0.proj", "net.2")
        fc1 = try DiTLinear(sd, names.0, in: d, out: m)
        fc2 = try DiTLinear(sd, names.1, in: m, out: d)
    }
}

/// `DiTBlock` (diffusers: `BasicTransformerBlock` with `norm_type="ada_norm_zero"`):
/// adaLN-Zero conditioning of attention and MLP.
///
///     shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = adaLN_modulation(c).chunk(6)
///     x = x + gate_msa · attn(modulate(norm1(x), shift_msa, scale_msa))
///     x = x + gate_mlp · mlp(modulate(norm2(x), shift_mlp, scale_mlp))
///
/// diffusers' `AdaLayerNormZero` emits the same six chunks in the same order.
package struct DiTBlock {
    package let adaLN: DiTLinear  // adaLN_modulation.1 (diffusers: norm1.linear), D → 6D
    package let attn: DiTAttention
    package let mlp: DiTMLP
    /// norm1's eps: 1e-6 in both layouts (diffusers' AdaLayerNormZero hard-codes it).
    let norm1Eps: Float = 1e-6
    /// norm2's eps: 1e-6 in the reference; diffusers' `norm3` takes the config's `norm_eps`.
    let norm2Eps: Float
    /// diffusers only: this block's own `norm1.emb` (timestep + class embedder).
    let condition: ConditionEmbedder?

    init(_ sd: StateDict, config c: DiTConfig) throws {
        let d = c.hiddenSize
        switch c.layout {
        case .reference:
            adaLN = try DiTLinear(sd, "adaLN_modulation.1", in: d, out: 6 * d)
            attn = try DiTAttention(sd.scope("attn"), layout: .reference, hiddenSize: d, heads: c.numHeads)
            mlp = try DiTMLP(sd.scope("mlp"), layout: .reference, hiddenSize: d, mlpHidden: c.mlpHiddenSize)
            condition = nil
        case .diffusers:
            adaLN = try DiTLinear(sd, "norm1.linear", in: d, out: 6 * d)
            attn = try DiTAttention(sd.scope("attn1"), layout: .diffusers, hiddenSize: d, heads: c.numHeads)
            mlp = try DiTMLP(sd.scope("ff"), layout: .diffusers, hiddenSize: d, mlpHidden: c.mlpHiddenSize)
            let emb = sd.scope("norm1.emb")
            condition = ConditionEmbedder(
                timestep: try TimestepEmbedder(emb.scope("timestep_embedder"), layout: .diffusers, hiddenSize: d),
                label: try LabelEmbedder(emb.scope("class_embedder"), rows: c.labelTableRows, hiddenSize: d))
        }
        norm2Eps = c.mlpNormEps
    }

    /// Updates the tokens `ws.x` (N·T, D) in place given SiLU(c) (N, D).
    func callAsFunction(_ ws: DiTWorkspace, siluC: UnsafePointer<Float>) {
        let n = ws.batch, t = ws.tokens, m = n * t, d = adaLN.inFeatures
        let mod = ws.mod.data, md = 6 * d
        adaLN(siluC, rows: n, into: mod)
        // Attention branch.
        DiTKernels.layerNormModulate(ws.x.data, out: ws.h.data, rows: m, width: d, tokensPerItem: t, eps: norm1Eps,
                                     shift: mod, scale: mod + d, modStride: md)
        attn.qkv(ws.h.data, rows: m, into: ws.qkv.data)
        DiTAttention.attend(qkv: ws.qkv.data, out: ws.h.data, batch: n, tokens: t, dim: d, heads: attn.heads)
        attn.proj.withoutBias(ws.h.data, rows: m, into: ws.qkv.data)
        DiTKernels.gatedResidual(ws.x.data, ws.qkv.data, bias: attn.proj.bias.data, gate: mod + 2 * d, modStride: md,
                                 rows: m, width: d, tokensPerItem: t)
        // MLP branch.
        DiTKernels.layerNormModulate(ws.x.data, out: ws.h.data, rows: m, width: d, tokensPerItem: t, eps: norm2Eps,
                                     shift: mod + 3 * d, scale: mod + 4 * d, modStride: md)
        mlp.fc1.withoutBias(ws.h.data, rows: m, into: ws.u.data)
        VectorMath.biasGeluTanh(ws.u.data, rows: m, width: mlp.fc1.outFeatures, bias: mlp.fc1.bias.data)
        mlp.fc2.withoutBias(ws.u.data, rows: m, into: ws.qkv.data)
        DiTKernels.gatedResidual(ws.x.data, ws.qkv.data, bias: mlp.fc2.bias.data, gate: mod + 5 * d, modStride: md,
                                 rows: m, width: d, tokensPerItem: t)
    }

    func flops(batch n: Int, tokens t: Int) -> Double {
        let m = n * t
        return adaLN.flops(rows: n) + attn.qkv.flops(rows: m) + attn.proj.flops(rows: m)
            + DiTAttention.flops(batch: n, tokens: t, dim: adaLN.inFeatures)
            + mlp.fc1.flops(rows: m) + mlp.fc2.flops(rows: m)
            + (condition?.timestep.flops(batch: n) ?? 0)
    }
}
