import Foundation
import PipelineTensor

/// diffusers `DiagonalGaussianDistribution`: the encoder's posterior over latents.
/// The moments split along channels into mean and log-variance; the log-variance is
/// clamped to [−30, 20] as the reference does before anything uses it.
public struct LatentDistribution {
    public let mean: Tensor
    /// The clamped log-variance; nil for a point mass (the identity autoencoder).
    public let logvar: Tensor?

    public static let logvarRange: ClosedRange<Float> = -30...20

    /// From the (N, 2L, H, W) moments: channels 0..<L are the mean, L..<2L the log-variance.
    public init(moments: Tensor) {
        precondition(moments.rank == 4 && moments.shape[1] % 2 == 0, "posterior: moments \(moments.shape)")
        let n = moments.shape[0], l = moments.shape[1] / 2, hw = moments.shape[2] * moments.shape[3]
        let half = [n, l, moments.shape[2], moments.shape[3]]
        let mean = Tensor(uninitialized: half), logvar = Tensor(uninitialized: half)
        for b in 0..<n {
            let src = moments.data + b * 2 * l * hw
            (mean.data + b * l * hw).update(from: src, count: l * hw)
            let lv = logvar.data + b * l * hw
            for i in 0..<(l * hw) {
                lv[i] = min(max(src[l * hw + i], LatentDistribution.logvarRange.lowerBound),
                            LatentDistribution.logvarRange.upperBound)
            }
        }
        self.mean = mean
        self.logvar = logvar
    }

    /// A deterministic posterior at `mean`.
    public init(pointMass mean: Tensor) {
        self.mean = mean
        self.logvar = nil
    }

    /// exp(0.5 · logvar); zeros for a point mass.
    public var std: Tensor {
        guard let logvar else { return Tensor(zeros: mean.shape) }
        let out = Tensor(uninitialized: logvar.shape)
        for i in 0..<out.count { out.data[i] = expf(0.5 * logvar.data[i]) }
        return out
    }

    /// The distribution's mode (its mean).
    public func mode() -> Tensor { mean.copy() }

    /// mean + std · eps, with eps the standard-normal noise the caller draws
    /// (the pipeline's noise keyed by seed and image index), shaped like the mean.
    public func sample(eps: Tensor) throws -> Tensor {
        guard eps.shape == mean.shape else {
            throw VAEError.badInput(what: "posterior sample", reason: "noise has shape \(eps.shape), the mean \(mean.shape)")
        }
        guard logvar != nil else { return mean.copy() }
        let s = std
        let out = Tensor(uninitialized: mean.shape)
        for i in 0..<out.count { out.data[i] = mean.data[i] + s.data[i] * eps.data[i] }
        return out
    }
}
