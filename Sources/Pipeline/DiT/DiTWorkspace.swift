import Foundation
import PipelineTensor

/// The activations of one forward pass at one batch size, kept between calls.
final class DiTWorkspace {
    let batch: Int, tokens: Int
    let x: Tensor    // (N·T, D) residual stream
    let h: Tensor    // (N·T, D) normalised / attention output
    let qkv: Tensor  // (N·T, 3D) packed q|k|v; reused for projection outputs and the final patches
    let u: Tensor    // (N·T, mlp) MLP hidden; reused for the patch rows
    let mod: Tensor  // (N, 6D) modulation vectors

    init(config c: DiTConfig, batch: Int) {
        self.batch = batch
        tokens = c.tokens
        let m = batch * c.tokens, d = c.hiddenSize
        x = Tensor(uninitialized: [m, d])
        h = Tensor(uninitialized: [m, d])
        qkv = Tensor(uninitialized: [m, max(3 * d, c.patchSize * c.patchSize * c.outChannels)])
        u = Tensor(uninitialized: [m, max(c.mlpHiddenSize, c.inChannels * c.patchSize * c.patchSize)])
        mod = Tensor(uninitialized: [batch, 6 * d])
    }
}
