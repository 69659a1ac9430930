import Foundation
import PipelineTensor

extension TrainableDiT {
    /// Accumulates into every parameter's gradient the gradient of a scalar loss whose
    /// gradient with respect to the model output (N, outC, H, W) is `dOut`.
    /// `pos_embed` gets none (a frozen buffer in the reference).
    func backward(_ dOut: Tensor, acts a: TrainingActivations) {
        let cf = config, n = a.batch, tk = a.tokens, d = cf.hiddenSize, m = n * tk
        let dTokens = Tensor(uninitialized: [m, cf.patchSize * cf.patchSize * cf.outChannels])
        Patchify.patchify(dOut, grid: cf.gridSize, patch: cf.patchSize, channels: cf.outChannels, into: dTokens.data)
        let dx = Tensor(zeros: [m, d])       // d(residual stream)
        let dh = Tensor(uninitialized: [m, d])
        let dxhat = Tensor(uninitialized: [m, d])
        let dSiluC = Tensor(zeros: [n, d])

        // final_layer: linear(modulate(norm_final(x), shift, scale)).
        finalLinear.backward(a.hF.data, dy: dTokens.data, rows: m, dx: dh.data)
        let dFinalMod = Tensor(zeros: [n, 2 * d])
        TrainingKernels.modulateBackward(dh: dh.data, xhat: a.xhatF.data, dxhat: dxhat.data, rows: m, width: d, tokensPerItem: tk,
                                         scale: a.finalMod.data + d, dshift: dFinalMod.data, dscale: dFinalMod.data + d, modStride: 2 * d)
        TrainingKernels.layerNormBackward(dxhat: dxhat.data, xhat: a.xhatF.data, rstd: a.rstdF.data, dx: dx.data,
                                          rows: m, width: d, accumulate: false)
        finalAdaLN.backward(a.siluC.data, dy: dFinalMod.data, rows: n, dx: dSiluC.data, accumulate: true)

        let scratch = BlockScratch(rows: m, dim: d, hidden: cf.mlpHiddenSize)
        for (block, ba) in zip(blocks, a.blocks).reversed() {
            blockBackward(block, ba, dx: dx.data, siluC: a.siluC.data, dSiluC: dSiluC.data, scratch: scratch, batch: n)
        }

        // c = t_embedder(t) + y_embedder(y); dc = dSiLU(c).
        let dc = Tensor(uninitialized: [n, d])
        for i in 0..<(n * d) { dc.data[i] = dSiluC.data[i] * TrainingKernels.siluDerivative(a.c.data[i]) }
        for (i, label) in a.labels.enumerated() {
            let g = labelTableGrad.data + label * d, src = dc.data + i * d
            for j in 0..<d { g[j] += src[j] }
        }
        let dAct = Tensor(uninitialized: [n, d])
        tFC2.backward(a.tAct.data, dy: dc.data, rows: n, dx: dAct.data)
        for i in 0..<(n * d) { dAct.data[i] *= TrainingKernels.siluDerivative(a.tPre.data[i]) }
        tFC1.backward(a.freqs.data, dy: dAct.data, rows: n, dx: nil)
        // x_embedder: the patch conv as a GEMM over the im2col rows (pos_embed is frozen).
        patch.backward(a.patches.data, dy: dx.data, rows: m, dx: nil)
    }

    /// Backward through one block: `dx` holds d(block output) and becomes d(block input);
    /// d(SiLU(c)) is accumulated into `dSiluC`.
    private func blockBackward(_ b: TrainBlock, _ a: BlockActivations, dx: UnsafeMutablePointer<Float>,
                               siluC: UnsafePointer<Float>, dSiluC: UnsafeMutablePointer<Float>, scratch s: BlockScratch, batch n: Int) {
        let cf = config, tk = cf.tokens, d = cf.hiddenSize, m = n * tk, md = 6 * d, hid = cf.mlpHiddenSize
        let mod = a.mod.data
        let dMod = s.dMod(batch: n, width: md)
        // x = x1 + gate_mlp · fc2(gelu(fc1(modulate(norm2(x1), shift_mlp, scale_mlp)))).
        TrainingKernels.gatedResidualBackward(dx: dx, y: a.f.data, gate: mod + 5 * d, dy: s.dD.data, dgate: dMod + 5 * d,
                                              modStride: md, rows: m, width: d, tokensPerItem: tk)
        b.fc2.backward(a.g.data, dy: s.dD.data, rows: m, dx: s.dHidden.data)
        let dg = s.dHidden.data, u = a.u.data
        for i in 0..<(m * hid) { dg[i] *= TrainingKernels.geluTanhDerivative(u[i]) }
        b.fc1.backward(a.h2.data, dy: dg, rows: m, dx: s.dD.data)
        TrainingKernels.modulateBackward(dh: s.dD.data, xhat: a.xhat2.data, dxhat: s.dXhat.data, rows: m, width: d, tokensPerItem: tk,
                                         scale: mod + 4 * d, dshift: dMod + 3 * d, dscale: dMod + 4 * d, modStride: md)
        TrainingKernels.layerNormBackward(dxhat: s.dXhat.data, xhat: a.xhat2.data, rstd: a.rstd2.data, dx: dx,
                                          rows: m, width: d, accumulate: true)
        // x1 = x0 + gate_msa · proj(attn(qkv(modulate(norm1(x0), shift_msa, scale_msa)))).
        TrainingKernels.gatedResidualBackward(dx: dx, y: a.o.data, gate: mod + 2 * d, dy: s.dD.data, dgate: dMod + 2 * d,
                                              modStride: md, rows: m, width: d, tokensPerItem: tk)
        b.proj.backward(a.attn.data, dy: s.dD.data, rows: m, dx: s.dAttn.data)
        Attention.packedBackward(qkv: a.qkv.data, probabilities: a.probs.data, dOut: s.dAttn.data, dqkv: s.dQKV.data,
                                 batch: n, tokens: tk, dim: d, heads: b.heads)
        b.qkv.backward(a.h1.data, dy: s.dQKV.data, rows: m, dx: s.dD.data)
        TrainingKernels.modulateBackward(dh: s.dD.data, xhat: a.xhat1.data, dxhat: s.dXhat.data, rows: m, width: d, tokensPerItem: tk,
                                         scale: mod + d, dshift: dMod, dscale: dMod + d, modStride: md)
        TrainingKernels.layerNormBackward(dxhat: s.dXhat.data, xhat: a.xhat1.data, rstd: a.rstd1.data, dx: dx,
                                          rows: m, width: d, accumulate: true)
        b.adaLN.backward(siluC, dy: dMod, rows: n, dx: dSiluC, accumulate: true)
    }
}

/// Gradient buffers shared by the blocks of one backward pass.
final class BlockScratch {
    let dD: Tensor, dXhat: Tensor, dAttn: Tensor, dQKV: Tensor, dHidden: Tensor, dModBuffer: Tensor

    init(rows m: Int, dim d: Int, hidden: Int) {
        dD = Tensor(uninitialized: [m, d]); dXhat = Tensor(uninitialized: [m, d]); dAttn = Tensor(uninitialized: [m, d])
        dQKV = Tensor(uninitialized: [m, 3 * d]); dHidden = Tensor(uninitialized: [m, hidden])
        dModBuffer = Tensor(uninitialized: [max(1, m), 6 * d])
    }

    /// The (N, 6D) modulation gradient, zeroed.
    func dMod(batch n: Int, width: Int) -> UnsafeMutablePointer<Float> {
        dModBuffer.data.update(repeating: 0, count: n * width)
        return dModBuffer.data
    }
}
