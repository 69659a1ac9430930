import Foundation
import PipelineTensor
import PipelineDiT

/// What one block's forward pass keeps for its backward pass.
final class BlockActivations {
    let mod: Tensor    // (N, 6D) shift/scale/gate ×2
    let xhat1: Tensor, rstd1: Tensor, h1: Tensor
    let qkv: Tensor    // (M, 3D)
    let probs: Tensor  // (N·H, T, T) softmax(q·kᵀ/√d)
    let attn: Tensor   // (M, D) heads concatenated
    let o: Tensor      // (M, D) attn.proj output (with bias)
    let xhat2: Tensor, rstd2: Tensor, h2: Tensor
    let u: Tensor      // (M, hidden) fc1 output before GELU
    let g: Tensor      // (M, hidden) GELU(u)
    let f: Tensor      // (M, D) fc2 output (with bias)

    init(batch n: Int, tokens t: Int, dim d: Int, hidden: Int, heads: Int) {
        let m = n * t
        mod = Tensor(uninitialized: [n, 6 * d])
        xhat1 = Tensor(uninitialized: [m, d]); rstd1 = Tensor(uninitialized: [m]); h1 = Tensor(uninitialized: [m, d])
        qkv = Tensor(uninitialized: [m, 3 * d])
        probs = Tensor(uninitialized: [n * heads, t, t])
        attn = Tensor(uninitialized: [m, d]); o = Tensor(uninitialized: [m, d])
        xhat2 = Tensor(uninitialized: [m, d]); rstd2 = Tensor(uninitialized: [m]); h2 = Tensor(uninitialized: [m, d])
        u = Tensor(uninitialized: [m, hidden]); g = Tensor(uninitialized: [m, hidden])
        f = Tensor(uninitialized: [m, d])
    }
}

/// The activations of one training forward pass (batch N, T tokens, width D).
final class TrainingActivations {
    let batch: Int, tokens: Int
    let labels: [Int]
    let patches: Tensor    // (M, C·p·p) im2col of x
    let freqs: Tensor      // (N, 256) timestep frequencies
    let tPre: Tensor       // (N, D) t_embedder.mlp.0 output (before SiLU)
    let tAct: Tensor       // (N, D) SiLU of it
    let c: Tensor          // (N, D) t_emb + y_emb
    let siluC: Tensor      // (N, D)
    let x: Tensor          // (M, D) residual stream, its final value
    let blocks: [BlockActivations]
    let finalMod: Tensor, xhatF: Tensor, rstdF: Tensor, hF: Tensor
    let outTokens: Tensor  // (M, p·p·outC)

    init(config cf: DiTConfig, batch n: Int, labels: [Int]) {
        batch = n
        tokens = cf.tokens
        self.labels = labels
        let m = n * cf.tokens, d = cf.hiddenSize
        patches = Tensor(uninitialized: [m, cf.inChannels * cf.patchSize * cf.patchSize])
        freqs = Tensor(uninitialized: [n, TimestepEmbedder.frequencyCount])
        tPre = Tensor(uninitialized: [n, d]); tAct = Tensor(uninitialized: [n, d])
        c = Tensor(uninitialized: [n, d]); siluC = Tensor(uninitialized: [n, d])
        x = Tensor(uninitialized: [m, d])
        blocks = (0..<cf.depth).map { _ in
            BlockActivations(batch: n, tokens: cf.tokens, dim: d, hidden: cf.mlpHiddenSize, heads: cf.numHeads)
        }
        finalMod = Tensor(uninitialized: [n, 2 * d])
        xhatF = Tensor(uninitialized: [m, d]); rstdF = Tensor(uninitialized: [m]); hF = Tensor(uninitialized: [m, d])
        outTokens = Tensor(uninitialized: [m, cf.patchSize * cf.patchSize * cf.outChannels])
    }
}

extension TrainableDiT {
    /// The reference forward pass (`DiT.forward`, no label dropout: labels are used as given,
    /// `num_classes` being the null label) keeping every activation the backward pass needs.
    func trainingForward(_ x: Tensor, t: [Float], y: [Int]) throws -> (out: Tensor, acts: TrainingActivations) {
        let cf = config
        guard x.rank == 4, x.shape[0] > 0, x.shape[1] == cf.inChannels, x.shape[2] == cf.inputSize, x.shape[3] == cf.inputSize else {
            throw DiTError.badInput("x has shape \(x.shape), expected (N, \(cf.inChannels), \(cf.inputSize), \(cf.inputSize))")
        }
        let n = x.shape[0], tk = cf.tokens, d = cf.hiddenSize, m = n * tk
        guard t.count == n, y.count == n else { throw DiTError.badInput("x holds \(n) items but t has \(t.count) and y \(y.count)") }
        let rows = labelTable.shape[0]
        for (i, label) in y.enumerated() where label < 0 || label >= rows {
            throw DiTError.badInput("label \(label) at index \(i) is outside 0..<\(rows)")
        }
        let a = TrainingActivations(config: cf, batch: n, labels: y)
        // x_embedder + pos_embed.
        Patchify.im2col(x, patch: cf.patchSize, into: a.patches.data)
        patch.forward(a.patches.data, rows: m, into: a.x.data)
        let pe = posEmbed.data
        for r in 0..<m {
            let o = a.x.data + r * d, q = pe + (r % tk) * d
            for i in 0..<d { o[i] += q[i] }
        }
        // c = t_embedder(t) + y_embedder(y); every consumer applies SiLU first.
        let f = TimestepEmbedder.frequencies(t, shift: 0)
        a.freqs.data.update(from: f.data, count: f.count)
        tFC1.forward(a.freqs.data, rows: n, into: a.tPre.data)
        a.tAct.data.update(from: a.tPre.data, count: n * d)
        Activation.silu(a.tAct.data, count: n * d)
        tFC2.forward(a.tAct.data, rows: n, into: a.c.data)
        for (i, label) in y.enumerated() {
            let src = labelTable.data + label * d, dst = a.c.data + i * d
            for j in 0..<d { dst[j] += src[j] }
        }
        a.siluC.data.update(from: a.c.data, count: n * d)
        Activation.silu(a.siluC.data, count: n * d)

        for (block, ba) in zip(blocks, a.blocks) {
            blockForward(block, ba, x: a.x.data, siluC: a.siluC.data, batch: n)
        }
        // final_layer.
        finalAdaLN.forward(a.siluC.data, rows: n, into: a.finalMod.data)
        TrainingKernels.layerNorm(a.x.data, xhat: a.xhatF.data, rstd: a.rstdF.data, rows: m, width: d, eps: 1e-6)
        TrainingKernels.modulate(a.xhatF.data, out: a.hF.data, rows: m, width: d, tokensPerItem: tk,
                                 shift: a.finalMod.data, scale: a.finalMod.data + d, modStride: 2 * d)
        finalLinear.forward(a.hF.data, rows: m, into: a.outTokens.data)
        let out = Unpatchify.apply(a.outTokens.data, batch: n, grid: cf.gridSize, patch: cf.patchSize, channels: cf.outChannels)
        return (out, a)
    }

    private func blockForward(_ b: TrainBlock, _ a: BlockActivations, x: UnsafeMutablePointer<Float>,
                              siluC: UnsafePointer<Float>, batch n: Int) {
        let cf = config, tk = cf.tokens, d = cf.hiddenSize, m = n * tk, md = 6 * d
        let mod = a.mod.data
        b.adaLN.forward(siluC, rows: n, into: mod)
        TrainingKernels.layerNorm(x, xhat: a.xhat1.data, rstd: a.rstd1.data, rows: m, width: d, eps: 1e-6)
        TrainingKernels.modulate(a.xhat1.data, out: a.h1.data, rows: m, width: d, tokensPerItem: tk,
                                 shift: mod, scale: mod + d, modStride: md)
        b.qkv.forward(a.h1.data, rows: m, into: a.qkv.data)
        Attention.packed(qkv: a.qkv.data, out: a.attn.data, batch: n, tokens: tk, dim: d, heads: b.heads, probabilities: a.probs.data)
        b.proj.forward(a.attn.data, rows: m, into: a.o.data)
        TrainingKernels.gatedResidual(x, a.o.data, gate: mod + 2 * d, modStride: md, rows: m, width: d, tokensPerItem: tk)

        TrainingKernels.layerNorm(x, xhat: a.xhat2.data, rstd: a.rstd2.data, rows: m, width: d, eps: cf.mlpNormEps)
        TrainingKernels.modulate(a.xhat2.data, out: a.h2.data, rows: m, width: d, tokensPerItem: tk,
                                 shift: mod + 3 * d, scale: mod + 4 * d, modStride: md)
        b.fc1.forward(a.h2.data, rows: m, into: a.g.data)
        TrainingKernels.geluTanh(a.g.data, pre: a.u.data, count: a.g.count)
        b.fc2.forward(a.g.data, rows: m, into: a.f.data)
        TrainingKernels.gatedResidual(x, a.f.data, gate: mod + 5 * d, modStride: md, rows: m, width: d, tokensPerItem: tk)
    }
}

/// Patch extraction and its inverse as plain index maps.
enum Patchify {
    /// (N, C, H, W) → rows (item, gi, gj) of columns (channel, ki, kj): the patch conv as a GEMM.
    static func im2col(_ x: Tensor, patch p: Int, into patches: UnsafeMutablePointer<Float>) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let gh = h / p, gw = w / p, k = c * p * p, src = x.data
        for item in 0..<n {
            for gi in 0..<gh {
                for gj in 0..<gw {
                    let row = patches + ((item * gh + gi) * gw + gj) * k
                    for ch in 0..<c {
                        for ki in 0..<p {
                            (row + (ch * p + ki) * p).update(from: src + ((item * c + ch) * h + gi * p + ki) * w + gj * p, count: p)
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of `Unpatchify.apply`: (N, C, H, W) → tokens (N·T, p·p·C), 'nchpwq->nhwpqc'.
    static func patchify(_ x: Tensor, grid g: Int, patch p: Int, channels c: Int, into tokens: UnsafeMutablePointer<Float>) {
        let n = x.shape[0], side = g * p, src = x.data
        for item in 0..<n {
            for gi in 0..<g {
                for gj in 0..<g {
                    let tok = tokens + ((item * g + gi) * g + gj) * p * p * c
                    for pi in 0..<p {
                        for qi in 0..<p {
                            for ch in 0..<c {
                                tok[(pi * p + qi) * c + ch] = src[((item * c + ch) * side + gi * p + pi) * side + gj * p + qi]
                            }
                        }
                    }
                }
            }
        }
    }
}
