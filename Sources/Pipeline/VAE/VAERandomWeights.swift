import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

extension ShapeProbe: VAEParameters {
    public func child(_ name: String) -> VAEParameters { scope(name) }
    public func has(_ key: String) -> Bool { false }
    public func shape(_ key: String) -> [Int]? { nil }
}

extension AutoencoderKL {
    /// Random weights for `config` (seeded, deterministic), as a tensor source in diffusers'
    /// key layout for the strict loader (`load(config:weights:)`), e.g. for the benchmarks
    /// or to write out as a checkpoint. The keys and shapes are those the loader takes
    /// (`ShapeProbe`; optional tensors absent, attention as linears); values in that order
    /// from one `SplitMix64` stream seeded `seed·γ | 1`, one value per element: weights
    /// uniform in ±1/√fan_in as PyTorch initialises convolutions and linears, norm scales
    /// in 1 ± 0.1, other 1-D tensors (biases) in ±0.1. Pinned by `RandomWeightsDigestTests`.
    public static func randomWeights(config: AutoencoderKLConfig, seed: UInt64 = 0) throws -> RandomTensorSource {
        let probe = ShapeProbe()
        _ = try AutoencoderKL(config: config, parameters: probe)
        let start = seed &* SplitMix64.gamma | 1
        var offset = 0
        let entries = probe.taken.map { key, shape in
            let at = offset, count = shape.reduce(1, *)
            offset += count
            let isNormScale = shape.count == 1 && key.hasSuffix("weight")
            let bound: Float = shape.count > 1 ? 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot() : 0.1
            return RandomTensorSource.Entry(key: key, shape: shape) { p in
                var rng = SplitMix64(seed: start)
                rng.skip(at)
                for i in 0..<count {
                    let u = rng.unitFloat() * 2 - 1
                    p[i] = isNormScale ? 1 + 0.1 * u : bound * u
                }
            }
        }
        return try RandomTensorSource(name: "random AutoencoderKL seed \(seed)", entries: entries)
    }

    /// A model with `randomWeights(config:seed:)`, built by the strict loader.
    public static func random(config: AutoencoderKLConfig, seed: UInt64 = 0,
                              options: VAEOptions = .standard) throws -> AutoencoderKL {
        try load(config: config, weights: randomWeights(config: config, seed: seed), options: options)
    }
}
