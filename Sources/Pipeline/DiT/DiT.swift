import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

/// Diffusion Transformer (facebookresearch/DiT `models.py` `DiT`), float32 on CPU.
///
/// Holds either key layout's weights in the same modules: the reference (one shared
/// t/y embedder) or diffusers' `DiTTransformer2DModel` (an embedder per block; the final
/// layer uses block 0's). `forward` may be called from several threads; each concurrent
/// call beyond the first allocates its own activations.
public final class DiT {
    public let config: DiTConfig
    package let xEmbedder: PatchEmbed            // x_embedder (diffusers: pos_embed.proj)
    package let posEmbed: Tensor                 // pos_embed (T, D): stored buffer, or computed when absent
    package let condition: ConditionEmbedder?    // t_embedder + y_embedder (reference layout only)
    package let blocks: [DiTBlock]               // blocks.i (diffusers: transformer_blocks.i)
    package let finalLayer: DiTFinalLayer        // final_layer (diffusers: norm_out, proj_out_1, proj_out_2)

    private let lock = NSLock()
    private var spare: DiTWorkspace?

    /// Builds the model from a state dict, strictly: every tensor must be present with its
    /// exact shape and every tensor of the source must be used (`pos_embed` is optional).
    public init(config: DiTConfig, weights: TensorSource) throws {
        let file = weights.sourceName
        try config.validate(file: file)
        // A random source holds whatever the config asks for, in the config's layout.
        let layout = weights is RandomTensorSource ? config.layout : try DiTConfig.detectLayout(weights)
        guard layout == config.layout else {
            throw DiTConfigError.invalid(file: file, reason: "the config describes the \(config.layout) key layout but the weights use the \(layout) one")
        }
        if layout == .diffusers && config.depth == 0 {
            throw DiTConfigError.invalid(file: file, reason: "a diffusers DiT needs at least one block")
        }
        self.config = config
        let sd = StateDict(weights)
        let d = config.hiddenSize, t = config.tokens
        switch layout {
        case .reference:
            xEmbedder = try PatchEmbed(sd.scope("x_embedder"), config: config)
            if let stored = try sd.takeIfPresent("pos_embed", shape: [1, t, d]) {
                posEmbed = stored.reshaped([t, d])
            } else {
                posEmbed = try PositionEmbedding.sincos2D(embedDim: d, gridSize: config.gridSize)
            }
            condition = ConditionEmbedder(
                timestep: try TimestepEmbedder(sd.scope("t_embedder"), layout: .reference, hiddenSize: d),
                label: try LabelEmbedder(sd.scope("y_embedder"), rows: config.labelTableRows, hiddenSize: d))
            blocks = try (0..<config.depth).map { try DiTBlock(sd.scope("blocks.\($0)"), config: config) }
        case .diffusers:
            // diffusers registers its sin-cos table as a non-persistent buffer: never in the file.
            xEmbedder = try PatchEmbed(sd.scope("pos_embed"), config: config)
            posEmbed = try PositionEmbedding.sincos2D(embedDim: d, gridSize: config.gridSize)
            condition = nil
            blocks = try (0..<config.depth).map { try DiTBlock(sd.scope("transformer_blocks.\($0)"), config: config) }
        }
        finalLayer = try DiTFinalLayer(sd, config: config)
        try sd.finish()
    }

    /// `DiT.forward(x, t, y)`: x (N, C, H, W), t (N) timesteps (may be fractional), y (N)
    /// labels (`num_classes` = the null class) → (N, outC, H, W).
    public func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
        let c = config
        guard x.rank == 4, x.shape[0] > 0, x.shape[1] == c.inChannels,
              x.shape[2] == c.inputSize, x.shape[3] == c.inputSize else {
            throw DiTError.badInput("x has shape \(x.shape), expected (N, \(c.inChannels), \(c.inputSize), \(c.inputSize))")
        }
        let n = x.shape[0]
        guard t.count == n, y.count == n else {
            throw DiTError.badInput("x holds \(n) items but t has \(t.count) and y \(y.count)")
        }
        // Every GEMM below is split across `Threads.count` threads by the caller
        // (`BLAS.sgemmSplit`, attention heads in parallel), each a single-threaded BLAS call:
        // no BLAS thread pool spins beside the elementwise passes.
        return try BLAS.withThreads(1) { try forwardBody(x, t: t, y: y) }
    }

    private func forwardBody(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
        let c = config, n = x.shape[0]
        let ws = takeWorkspace(batch: n)
        defer { giveBack(ws) }
        xEmbedder(x, pos: posEmbed, into: ws.x.data, patches: ws.u.data)
        let finalC: Tensor
        if let condition {
            let siluC = try condition.siluConditioning(t: t, y: y)
            for block in blocks { block(ws, siluC: siluC.data) }
            finalC = siluC
        } else {
            var first: Tensor?
            for block in blocks {
                // Each diffusers block embeds t and y with its own weights.
                guard let own = block.condition else { throw DiTError.badInput("diffusers block without its embedder") }
                let siluC = try own.siluConditioning(t: t, y: y)
                if first == nil { first = siluC }
                block(ws, siluC: siluC.data)
            }
            guard let f = first else { throw DiTError.badInput("model has no blocks") }
            finalC = f  // diffusers: conditioning = transformer_blocks[0].norm1.emb(...)
        }
        finalLayer(ws, siluC: finalC.data, into: ws.qkv.data)
        return Unpatchify.apply(ws.qkv.data, batch: n, grid: c.gridSize, patch: c.patchSize, channels: c.outChannels)
    }

    /// `DiT.forward_with_cfg(x, t, y, cfg_scale)`: runs `forward` on the first half of x
    /// twice (conditional labels in y's first half, null labels in its second), then
    /// eps = uncond + scale·(cond − uncond), written to both halves.
    ///
    /// Reference quirk, kept by default: guidance is applied to the first **3** channels
    /// only (`model_out[:, :3]`, "for exact reproducibility reasons"); channel 3 of a
    /// 4-channel latent and the learned-variance channels keep each half's own output.
    /// `guideAllChannels: true` is the standard form the reference leaves commented out:
    /// guidance on all `in_channels` eps channels (`model_out[:, :in_channels]`).
    public func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float,
                               guideAllChannels: Bool = false) throws -> Tensor {
        guard x.rank == 4, x.shape[0] >= 2, x.shape[0] % 2 == 0 else {
            throw DiTError.badInput("forward_with_cfg needs an even batch (conditional + unconditional halves), x is \(x.shape)")
        }
        let n = x.shape[0], half = n / 2
        let firstHalf = x.slice(0..<half)
        let out = try forward(Tensor.concat([firstHalf, firstHalf]), t: t, y: y)
        let oc = config.outChannels
        let guided = min(oc, guideAllChannels ? config.inChannels : 3)
        let plane = config.inputSize * config.inputSize
        let o = out.data
        for i in 0..<half {
            for ch in 0..<guided {
                let cond = o + (i * oc + ch) * plane, uncond = o + ((half + i) * oc + ch) * plane
                for k in 0..<plane {
                    let g = uncond[k] + scale * (cond[k] - uncond[k])
                    cond[k] = g
                    uncond[k] = g
                }
            }
        }
        return out
    }

    private func takeWorkspace(batch: Int) -> DiTWorkspace {
        lock.lock()
        defer { lock.unlock() }
        if let ws = spare, ws.batch == batch {
            spare = nil
            return ws
        }
        spare = nil  // a different batch size: let the old buffers go
        return DiTWorkspace(config: config, batch: batch)
    }

    private func giveBack(_ ws: DiTWorkspace) {
        lock.lock()
        spare = ws
        lock.unlock()
    }
}
