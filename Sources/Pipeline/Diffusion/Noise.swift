import PipelineTensor
/// What a random draw is for. Part of the key of every draw, so the draws for
/// different purposes never overlap.
public enum NoisePurpose: UInt32, CaseIterable {
    /// The initial latent z_T of a sample.
    case initialLatent = 1
    /// The noise a sampler step adds (`step` = the step's position in the loop, 0 first).
    case samplerStep = 2
    /// A uniformly drawn class label.
    case classLabel = 3
    /// The seeded order of exact-balanced labels (`index` = the shuffle position).
    case labelOrder = 4
    /// The reparameterised sample of a VAE posterior (encode jobs).
    case vaePosterior = 5
    /// Training noise and timesteps.
    case trainingNoise = 6
    case trainingTimestep = 7
    /// Training label dropout (`class_dropout_prob`).
    case trainingLabelDrop = 8
    /// The `noise` job (index = the item's image index, step = the draw k): the timestep t,
    /// the noise eps of q_sample, the re-drawn posterior sample x0 and the flip coin (see `NoiseDraws`).
    case noisingTimestep = 9
    case noisingEps = 10
    case noisingPosterior = 11
    /// Whether draw k of item i uses the horizontally flipped image's latent (`noise --flip`).
    case noisingFlip = 12
    /// Training on encode-job shards: the posterior sample of image `index` (its index in the
    /// encode job) re-drawn in epoch `step`.
    case trainingLatent = 13
}

/// Where every sampler, encoder and training step takes its randomness from.
///
/// A draw is addressed by (sample index, purpose, step), never by the order of
/// calls: the values for sample `i` are a function of the source's seed and `i`
/// alone, so any batching, sharding or retry of the same indices reproduces them
/// bit for bit.
public protocol NoiseSource {
    /// Writes `count` standard-normal values for one sample into `out`.
    func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int,
                    index: Int, purpose: NoisePurpose, step: Int) throws
    /// A uniform integer in `0..<upperBound` for one sample.
    func uniformInt(below upperBound: Int, index: Int, purpose: NoisePurpose, step: Int) throws -> Int
}

extension NoiseSource {
    /// A batch of standard-normal tensors: row `r` is sample `indices[r]`'s draw,
    /// shaped `[indices.count] + sampleShape`.
    public func normal(indices: [Int], sampleShape: [Int], purpose: NoisePurpose, step: Int = 0) throws -> Tensor {
        let per = Tensor.count(of: sampleShape)
        let out = Tensor(uninitialized: [indices.count] + sampleShape)
        for (r, i) in indices.enumerated() {
            try fillNormal(out.data + r * per, count: per, index: i, purpose: purpose, step: step)
        }
        return out
    }

    /// The eps tensor of one sample: `(index, purpose, step)` → `shape`.
    public func normal(index: Int, shape: [Int], purpose: NoisePurpose, step: Int = 0) throws -> Tensor {
        let out = Tensor(uninitialized: shape)
        try fillNormal(out.data, count: out.count, index: index, purpose: purpose, step: step)
        return out
    }
}
