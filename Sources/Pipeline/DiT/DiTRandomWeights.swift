import Foundation
import PipelineTensor
import PipelineWeights

/// DiT's random weights (every layer, including the ones the reference zero-initialises, so a
/// wrong wiring shows): linear and patch-embedding weights uniform with the Xavier bound
/// √(6 / (fan_in + fan_out)), biases uniform in ±0.02, label-embedding tables in ±0.05; one
/// SplitMix64 stream in the order the loader asks for the keys (the reference layout's order:
/// x_embedder, t_embedder, y_embedder, blocks, final_layer). `RandomWeightsDigestTests` pins
/// the values (training runs start from them).
struct DiTRandomWeights: RandomTensorInitializer {
    var rng: SplitMix64
    /// diffusers' to_k and to_v parts of the last fused q|k|v draw, by key.
    private var pending: [String: Tensor] = [:]

    init(rng: SplitMix64) { self.rng = rng }

    /// Quirk kept from the per-module random initialisers these replace: the attention's
    /// q, k, v projections are drawn as timm's one fused (3D, D) `qkv` linear (its Xavier
    /// bound √(6 / 4D), one draw for the weight and one for the bias) in both layouts, so
    /// diffusers' separately stored to_q, to_k, to_v are that draw's row blocks, served as
    /// the loader asks for them (to_q first). Pinned by `RandomWeightsDigestTests`.
    mutating func draw(_ key: String, shape: [Int]) -> Tensor {
        if let t = pending.removeValue(forKey: key), t.shape == shape { return t }
        for kind in ["weight", "bias"] where key.hasSuffix("to_q." + kind) && !shape.isEmpty {
            let stem = String(key.dropLast(("to_q." + kind).count))
            let rows = shape[0]
            let fused = plain(kind, shape: [3 * rows] + shape.dropFirst())
            pending[stem + "to_k." + kind] = fused.slice(rows..<(2 * rows))
            pending[stem + "to_v." + kind] = fused.slice((2 * rows)..<(3 * rows))
            return fused.slice(0..<rows)
        }
        return plain(key, shape: shape)
    }

    private mutating func plain(_ key: String, shape: [Int]) -> Tensor {
        if key.hasSuffix("embedding_table.weight") { return rng.uniform(shape, bound: 0.05) }
        guard shape.count >= 2 else { return rng.uniform(shape, bound: 0.02) }
        let fanOut = shape[0], fanIn = shape.dropFirst().reduce(1, *)
        return rng.uniform(shape, bound: (6 / Float(fanIn + fanOut)).squareRoot())
    }
}

extension RandomTensorSource {
    /// Random DiT weights for `seed` (any configuration: the loader asks for the shapes).
    public static func dit(seed: UInt64, name: String = "random DiT") -> RandomTensorSource {
        RandomTensorSource(name: "\(name) (seed \(seed))", initializer: DiTRandomWeights(rng: SplitMix64(seed: seed)))
    }
}

extension DiT {
    /// A model with random weights, deterministic in `seed`, built by the same strict loader
    /// as a checkpoint (`RandomTensorSource.dit`): for benchmarks, tests and training.
    public convenience init(randomWeights config: DiTConfig, seed: UInt64) throws {
        try self.init(config: config, weights: RandomTensorSource.dit(seed: seed, name: "random \(config.preset?.rawValue ?? "DiT")"))
    }
}
