import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

extension DiTConfig {
    /// Random weights for this configuration (every layer, including the ones the reference
    /// zero-initialises), as a tensor source in this config's key layout for the strict loader:
    /// `DiT(config:weights:)` reads it like a checkpoint. Deterministic in `seed`.
    ///
    /// The values are pinned (`RandomWeightsDigestTests`): one `SplitMix64(seed)` gives each
    /// drawn tensor one value, in module order (x_embedder, t_embedder, y_embedder, blocks,
    /// final_layer; a diffusers block: norm1.linear, attn1, ff, norm1.emb), from which
    /// `SplitMix64.fillUniform` draws it. Linear weights are uniform in ±√(6/(in+out)), biases
    /// in ±0.02, label tables in ±0.05; the attention's q, k, v are drawn as timm's one fused
    /// (3D, D) qkv linear, so diffusers' to_q, to_k, to_v are its row blocks.
    public func randomWeights(seed: UInt64) throws -> RandomTensorSource {
        let name = "random \(preset?.rawValue ?? "DiT") seed \(seed)"
        try validate(file: name)
        var spec = DiTRandomSpec(seed: seed)
        let d = hiddenSize, m = mlpHiddenSize, p = patchSize
        let patchIn = inChannels * p * p, out = p * p * outChannels
        let embedder = layout == .reference ? "x_embedder.proj" : "pos_embed.proj"
        spec.linear(embedder, in: patchIn, out: d, weightShape: [d, inChannels, p, p])
        func condition(timestep: String, fc: (String, String), label: String) {
            spec.linear(timestep + "." + fc.0, in: TimestepEmbedder.frequencyCount, out: d)
            spec.linear(timestep + "." + fc.1, in: d, out: d)
            spec.embedding(label + ".embedding_table.weight", rows: labelTableRows, width: d)
        }
        switch layout {
        case .reference:
            condition(timestep: "t_embedder", fc: ("mlp.0", "mlp.2"), label: "y_embedder")
            for i in 0..<depth {
                let b = "blocks.\(i)."
                spec.linear(b + "adaLN_modulation.1", in: d, out: 6 * d)
                spec.linear(b + "attn.qkv", in: d, out: 3 * d)
                spec.linear(b + "attn.proj", in: d, out: d)
                spec.linear(b + "mlp.fc1", in: d, out: m)
                spec.linear(b + "mlp.fc2", in: m, out: d)
            }
            spec.linear("final_layer.adaLN_modulation.1", in: d, out: 2 * d)
            spec.linear("final_layer.linear", in: d, out: out)
        case .diffusers:
            for i in 0..<depth {
                let b = "transformer_blocks.\(i)."
                spec.linear(b + "norm1.linear", in: d, out: 6 * d)
                spec.linear(parts: ["to_q", "to_k", "to_v"].map { b + "attn1." + $0 }, in: d, out: d)
                spec.linear(b + "attn1.to_out.0", in: d, out: d)
                spec.linear(b + "ff.net.0.proj", in: d, out: m)
                spec.linear(b + "ff.net.2", in: m, out: d)
                condition(timestep: b + "norm1.emb.timestep_embedder", fc: ("linear_1", "linear_2"),
                          label: b + "norm1.emb.class_embedder")
            }
            spec.linear("proj_out_1", in: d, out: 2 * d)
            spec.linear("proj_out_2", in: d, out: out)
        }
        return try RandomTensorSource(name: name, entries: spec.entries)
    }
}

/// The entries of a random DiT, in draw order.
private struct DiTRandomSpec {
    private var rng: SplitMix64
    private(set) var entries: [RandomTensorSource.Entry] = []

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    /// One drawn tensor (one value of the stream), stored as consecutive `parts`.
    private mutating func draw(_ parts: [(key: String, shape: [Int])], bound: Float) {
        let base = rng.next()
        var offset = 0
        for (key, shape) in parts {
            let at = offset, count = shape.reduce(1, *)
            entries.append(.init(key: key, shape: shape) {
                SplitMix64.fillUniform($0, count: count, base: base, offset: at, bound: bound)
            })
            offset += count
        }
    }

    /// `nn.Linear(in, out)` stored as `parts` of `out` rows each, drawn as one linear
    /// of `parts.count · out` rows: the weight, then the bias.
    mutating func linear(parts: [String], in inF: Int, out outF: Int, weightShape: [Int]? = nil) {
        let fused = parts.count * outF
        draw(parts.map { ($0 + ".weight", weightShape ?? [outF, inF]) }, bound: (6 / Float(inF + fused)).squareRoot())
        draw(parts.map { ($0 + ".bias", [outF]) }, bound: 0.02)
    }

    mutating func linear(_ name: String, in inF: Int, out outF: Int, weightShape: [Int]? = nil) {
        linear(parts: [name], in: inF, out: outF, weightShape: weightShape)
    }

    mutating func embedding(_ key: String, rows: Int, width: Int) {
        draw([(key, [rows, width])], bound: 0.05)
    }
}
