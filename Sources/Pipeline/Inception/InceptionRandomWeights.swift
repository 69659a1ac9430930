import Foundation
import PipelineTensor
import PipelineWeights

/// Deterministic random FID Inception weights: the benchmarks' model, and the `random:SEED`
/// proxy feature extractor. Scaled so activations neither explode nor vanish through the
/// ~50 conv layers on Inception's longest path: convolution and fc weights are He-uniform
/// (±√(6/fan-in): variance 2/fan-in, which keeps the second moment through a ReLU), and each
/// BatchNorm is near identity (γ ∈ [0.9, 1.1], running var ∈ [0.9, 1.1], β and running mean
/// ∈ ±0.1), so pool3 features stay finite, non-zero and image-dependent (see
/// `InceptionRandomWeightsTests`). Any other 1-D tensor (the fc bias) is uniform in ±0.1.
/// The values follow the order the loader asks for them, from one LCG stream seeded by
/// `seed`; `RandomWeightsDigestTests` pins them (published proxy FIDs depend on them).
struct InceptionRandomWeights: RandomTensorInitializer {
    var state: UInt64

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }

    mutating func draw(_ key: String, shape: [Int]) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let (centre, halfWidth): (Float, Float)
        if shape.count > 1 {
            let fanIn = shape.dropFirst().reduce(1, *)
            (centre, halfWidth) = (0, (6 / Float(max(fanIn, 1))).squareRoot())
        } else if key.hasSuffix("running_var") || key.hasSuffix("bn.weight") {
            (centre, halfWidth) = (1, 0.1)
        } else {
            (centre, halfWidth) = (0, 0.1)
        }
        for i in 0..<t.count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(state >> 40) / Float(1 << 24)
            t.data[i] = centre + (2 * u - 1) * halfWidth
        }
        return t
    }
}

extension RandomTensorSource {
    /// The seed of the benchmarks' random Inception.
    public static let inceptionBenchmarkSeed: UInt64 = 0x5EED

    /// Random FID Inception weights for `seed`.
    public static func inception(seed: UInt64) -> RandomTensorSource {
        RandomTensorSource(name: "random FID Inception (seed \(seed))", initializer: InceptionRandomWeights(seed: seed))
    }
}
