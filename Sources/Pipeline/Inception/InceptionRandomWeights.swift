import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

extension ShapeProbe: LayerWeights {
    public func ignore(_ key: String) {}
    public func scoped(_ name: String) -> LayerWeights { scope(name) }
}

extension FIDInceptionV3 {
    /// The benchmarks' seed.
    public static let benchmarkSeed: UInt64 = 0x5EED

    /// Deterministic random weights in pytorch-fid's key layout, for the strict loader: the
    /// benchmarks' model and the `random[:SEED]` proxy feature extractor. Scaled so
    /// activations neither explode nor vanish through the ~50 conv layers on Inception's
    /// longest path: convolution and fc weights are He-uniform (±√(6/fan-in): variance
    /// 2/fan-in, which keeps the second moment through a ReLU), and each BatchNorm is near
    /// identity (γ ∈ [0.9, 1.1], running var ∈ [0.9, 1.1], β and running mean ∈ ±0.1), so
    /// pool3 features stay finite, non-zero and image-dependent (see
    /// `InceptionRandomWeightsTests`). Any other 1-D tensor (the fc bias) is uniform in ±0.1.
    /// The values follow the order the loader takes the tensors (`ShapeProbe`), one per
    /// element from one `LCG64` stream started at `seed·γ | 1` (its top 24 bits as the
    /// uniform). Pinned by `RandomWeightsDigestTests`.
    public static func randomWeights(seed: UInt64 = benchmarkSeed) throws -> RandomTensorSource {
        let probe = ShapeProbe()
        _ = try FIDInceptionV3(weights: probe)
        let start = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        var offset = 0
        let entries = probe.taken.map { key, shape in
            let at = offset, count = shape.reduce(1, *)
            offset += count
            let (centre, halfWidth): (Float, Float)
            if shape.count > 1 {
                let fanIn = shape.dropFirst().reduce(1, *)
                (centre, halfWidth) = (0, (6 / Float(max(fanIn, 1))).squareRoot())
            } else if key.hasSuffix("running_var") || key.hasSuffix("bn.weight") {
                (centre, halfWidth) = (1, 0.1)
            } else {
                (centre, halfWidth) = (0, 0.1)
            }
            return RandomTensorSource.Entry(key: key, shape: shape) { p in
                var rng = LCG64(state: start)
                rng.skip(at)
                for i in 0..<count {
                    let u = Float(rng.next() >> 40) / Float(1 << 24)
                    p[i] = centre + (2 * u - 1) * halfWidth
                }
            }
        }
        return try RandomTensorSource(name: "random fid-inception-v3 seed \(seed)", entries: entries)
    }

    /// The FID Inception-v3 with `randomWeights(seed:)`, built by the strict loader.
    public convenience init(randomWeights seed: UInt64 = benchmarkSeed, options: InceptionOptions = .standard) throws {
        try self.init(source: FIDInceptionV3.randomWeights(seed: seed), options: options)
    }
}
