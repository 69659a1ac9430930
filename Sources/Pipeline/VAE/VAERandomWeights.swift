import Foundation
import PipelineTensor
import PipelineWeights

/// AutoencoderKL's random weights (seeded, deterministic): convolution and linear weights
/// uniform in ±1/√fan_in as PyTorch initialises them, norm scales in 1 ± 0.1, other 1-D
/// tensors (biases, norm shifts) in ±0.1; one SplitMix64 stream of unit floats in the order
/// the loader asks for the keys. `RandomWeightsDigestTests` pins the values.
struct VAERandomWeights: RandomTensorInitializer {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed &* SplitMix64.gamma | 1) }

    mutating func draw(_ key: String, shape: [Int]) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let isNormScale = shape.count == 1 && key.hasSuffix("weight")
        let bound: Float = shape.count > 1 ? 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot() : 0.1
        for i in 0..<t.count {
            let u = rng.unitFloat() * 2 - 1
            t.data[i] = isNormScale ? 1 + 0.1 * u : bound * u
        }
        return t
    }
}

extension RandomTensorSource {
    /// Random AutoencoderKL weights for `seed` (any configuration: the loader asks for the shapes).
    public static func vae(seed: UInt64 = 0) -> RandomTensorSource {
        RandomTensorSource(name: "random AutoencoderKL (seed \(seed))", initializer: VAERandomWeights(seed: seed))
    }
}
