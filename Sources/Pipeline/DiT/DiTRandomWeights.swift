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

    mutating func draw(_ key: String, shape: [Int]) -> Tensor {
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
