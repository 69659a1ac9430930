import Foundation
import PipelineFiles

extension DiTConfig {
    /// The key layout a state dict uses, from its patch-embedding key.
    public static func detectLayout(_ source: TensorSource) throws -> DiTKeyLayout {
        if source.contains("x_embedder.proj.weight") { return .reference }
        if source.contains("pos_embed.proj.weight") { return .diffusers }
        throw DiTConfigError.cannotInfer(
            file: source.sourceName,
            reason: "neither 'x_embedder.proj.weight' (DiT) nor 'pos_embed.proj.weight' (diffusers) is present: not a DiT state dict")
    }

    /// Infers the configuration from tensor shapes when no config.json is at hand:
    /// hidden size, depth, patch size, in/out channels, MLP width and classes from the
    /// shapes; the input size from the stored `pos_embed` (or `inputSize`); the heads by the
    /// preset rule (S: 6, B: 12, L and XL: 16 by hidden size) unless `numHeads` is given.
    /// Without a config the label table is taken to hold the null class (class_dropout_prob > 0,
    /// as every released checkpoint), so `num_classes` = rows − 1.
    public static func infer(from source: TensorSource, numHeads: Int? = nil, inputSize: Int? = nil) throws -> DiTConfig {
        let file = source.sourceName
        func fail(_ r: String) -> DiTConfigError { .cannotInfer(file: file, reason: r) }
        func shape(_ key: String, rank: Int) throws -> [Int] {
            guard let s = source.info(key)?.shape else { throw WeightError.missingKey(file: file, key: key) }
            guard s.count == rank else { throw fail("'\(key)' has shape \(s), expected rank \(rank)") }
            return s
        }
        let layout = try detectLayout(source)
        let names: (patch: String, blocks: String, fc1: String, finalLinear: String, table: String)
        switch layout {
        case .reference:
            names = ("x_embedder.proj.weight", "blocks.", "mlp.fc1.weight", "final_layer.linear.weight",
                     "y_embedder.embedding_table.weight")
        case .diffusers:
            names = ("pos_embed.proj.weight", "transformer_blocks.", "ff.net.0.proj.weight", "proj_out_2.weight",
                     "transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight")
        }
        let pw = try shape(names.patch, rank: 4)
        let hidden = pw[0], inC = pw[1], patch = pw[2]
        guard pw[3] == patch, patch > 0 else { throw fail("'\(names.patch)' \(pw) is not a square patch kernel") }
        // An empty tensor can carry any dims: bound them before multiplying.
        guard patch <= DiTLimits.maxPatchSize, hidden <= DiTLimits.maxHiddenSize else {
            throw fail("'\(names.patch)' \(pw) is larger than any DiT (patch ≤ \(DiTLimits.maxPatchSize), hidden ≤ \(DiTLimits.maxHiddenSize))")
        }
        let blockIndices = Set(source.keys.compactMap { key -> Int? in
            guard key.hasPrefix(names.blocks) else { return nil }
            return Int(key.dropFirst(names.blocks.count).prefix { $0 != "." })
        })
        let depth = blockIndices.count
        guard depth > 0, blockIndices == Set(0..<depth) else {
            throw fail("block indices \(blockIndices.sorted()) are not 0..<\(depth)")
        }
        let fc1 = try shape(names.blocks + "0." + names.fc1, rank: 2)
        let fl = try shape(names.finalLinear, rank: 2)
        guard fl[0] % (patch * patch) == 0 else { throw fail("'\(names.finalLinear)' \(fl) is not p²·C rows for p = \(patch)") }
        let outC = fl[0] / (patch * patch)
        guard outC == inC || outC == 2 * inC else {
            throw fail("output channels \(outC) are neither in_channels \(inC) nor twice it")
        }
        let table = try shape(names.table, rank: 2)
        guard table[0] >= 2 else { throw fail("'\(names.table)' has \(table[0]) rows") }

        var size = inputSize
        if size == nil, layout == .reference, let pe = source.info("pos_embed")?.shape {
            guard pe.count == 3, pe[0] == 1 else { throw fail("'pos_embed' has shape \(pe), expected (1, T, D)") }
            let g = Int(Double(pe[1]).squareRoot().rounded())
            guard g * g == pe[1] else { throw fail("'pos_embed' holds \(pe[1]) tokens, not a square grid") }
            guard g <= DiTLimits.maxInputSize else { throw fail("'pos_embed' holds \(pe[1]) tokens, more than any DiT") }
            size = g * patch
        }
        guard let inputSize = size else {
            throw fail("the input size is unknown: the weights hold no 'pos_embed'; give a config.json")
        }
        guard let heads = numHeads ?? DiTPreset.numHeads(forHiddenSize: hidden) else {
            throw fail("hidden size \(hidden) matches no preset: give the number of heads (--num-heads)")
        }
        let c = DiTConfig(inputSize: inputSize, patchSize: patch, inChannels: inC, hiddenSize: hidden, depth: depth,
                          numHeads: heads, mlpRatio: Double(fc1[0]) / Double(hidden), numClasses: table[0] - 1,
                          hasNullClass: true, learnSigma: outC == 2 * inC, layout: layout,
                          mlpNormEps: layout == .reference ? 1e-6 : 1e-5)
        var exact = c
        exact.mlpHiddenSize = fc1[0]
        try exact.validate(file: file)
        return exact
    }
}
