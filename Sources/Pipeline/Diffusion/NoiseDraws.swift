import Foundation

/// Where the clean latent x0 of a noised draw comes from.
public enum NoiseX0Source: String, Codable, CaseIterable {
    /// x0 = scale · (mean + std · e) − shift·scale, with e re-drawn for every (seed, item, k)
    /// (purpose `noisingPosterior`): a fresh posterior sample per draw, as DiT's `train.py`
    /// takes `vae.encode(x).latent_dist.sample().mul_(0.18215)` at every step.
    case resample
    /// x0 = the encode job's stored scaled latent (one posterior sample per image, as
    /// fast-DiT's pre-extracted features): the same x0 for every draw of an item.
    case stored
}

/// The latent scaling the DiT sees (diffusers `scaling_factor`, `shift_factor`):
/// `(z − shift) · factor`, the arithmetic of `AutoencoderKL.scaled`.
public struct LatentScaling: Equatable, Sendable {
    public var factor: Float
    public var shift: Float?
    public init(factor: Float, shift: Float? = nil) { self.factor = factor; self.shift = shift }
    public static let identity = LatentScaling(factor: 1)

    @inline(__always)
    public func apply(_ z: Float) -> Float { ((shift.map { z - $0 }) ?? z) * factor }
}

/// The `noise` job's draw protocol: for item `i` (the encode job's image index) and draw
/// `k`, the timestep t, the q_sample noise eps and (with `NoiseX0Source.resample`) the
/// posterior noise are the noise protocol's draws keyed by (seed, index i, step k) under
/// their own purposes, so they depend on nothing else: not on the sharding, the worker,
/// the batch, the other items or the other draws.
public struct NoiseDraws {
    public let source: NoiseSource
    /// t is uniform in 0..<numTimesteps (ADM's `UniformSampler`).
    public let numTimesteps: Int

    public init(source: NoiseSource, numTimesteps: Int) throws {
        guard numTimesteps > 0 else { throw DiffusionError.invalidArgument("number of timesteps must be positive, got \(numTimesteps)") }
        self.source = source
        self.numTimesteps = numTimesteps
    }

    public init(seed: UInt64, numTimesteps: Int) throws {
        try self.init(source: PhiloxNoise(seed: seed), numTimesteps: numTimesteps)
    }

    public func timestep(item: Int, draw: Int) throws -> Int {
        try source.uniformInt(below: numTimesteps, index: item, purpose: .noisingTimestep, step: draw)
    }

    /// Whether (item, draw) takes the horizontally flipped image (a fair coin).
    public func flipped(item: Int, draw: Int) throws -> Bool {
        try source.uniformInt(below: 2, index: item, purpose: .noisingFlip, step: draw) == 1
    }

    /// The q_sample noise of (item, draw): `count` standard normals.
    public func eps(_ out: UnsafeMutablePointer<Float>, count: Int, item: Int, draw: Int) throws {
        try source.fillNormal(out, count: count, index: item, purpose: .noisingEps, step: draw)
    }

    /// x0 of (item, draw) written to `out` (`count` values): the posterior sample
    /// `scaling(mean + std · e)` with e the `noisingPosterior` draw, computed in float32 as
    /// `LatentDistribution.sample` and `AutoencoderKL.scaled` do.
    public func resampledX0(_ out: UnsafeMutablePointer<Float>, mean: UnsafePointer<Float>, std: UnsafePointer<Float>,
                            count: Int, scaling: LatentScaling, item: Int, draw: Int) throws {
        try source.fillNormal(out, count: count, index: item, purpose: .noisingPosterior, step: draw)
        for j in 0..<count { out[j] = scaling.apply(mean[j] + std[j] * out[j]) }
    }
}
