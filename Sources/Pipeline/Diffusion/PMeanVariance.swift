import Foundation
import PipelineTensor

/// p(x_{t-1} | x_t) as `p_mean_variance` returns it.
public struct PMeanVariance {
    public var mean: Tensor
    public var variance: Tensor
    public var logVariance: Tensor
    public var predXstart: Tensor
}

extension GaussianDiffusion {
    /// The number of output channels a model must produce for `C` input channels.
    public func modelOutputChannels(inChannels c: Int) -> Int { varType == .learnedRange ? 2 * c : c }

    /// `p_mean_variance` from the model's raw output for `x` at chain steps `t`
    /// (one per row). `modelOutput` is `[B, C, ...]`, or `[B, 2C, ...]` for the
    /// learned-range variance; `clipDenoised` clamps the x0 prediction to [-1, 1].
    public func pMeanVariance(modelOutput: Tensor, x: Tensor, t: [Int], clipDenoised: Bool) throws -> PMeanVariance {
        guard x.rank >= 2 else { throw DiffusionError.invalidArgument("x must be [B, C, ...], got \(x.shape)") }
        let batch = x.shape[0], channels = x.shape[1]
        try checkTimesteps(t, batch: batch)
        guard numTimesteps > 1 else {
            // The reference's clipped posterior log variance is empty for a 1-step chain.
            throw DiffusionError.invalidArgument("a 1-step chain has no posterior variance; use more steps")
        }
        var expected = x.shape
        expected[1] = modelOutputChannels(inChannels: channels)
        guard modelOutput.shape == expected else {
            throw DiffusionError.shapeMismatch(what: "model output", expected: expected, found: modelOutput.shape)
        }
        let per = x.count / batch  // C × spatial
        let outPer = modelOutput.count / batch
        let mean = Tensor(uninitialized: x.shape), variance = Tensor(uninitialized: x.shape)
        let logVar = Tensor(uninitialized: x.shape), xstart = Tensor(uninitialized: x.shape)
        for b in 0..<batch {
            let tb = t[b]
            let xs = x.data + b * per
            let eps = modelOutput.data + b * outPer
            let m = mean.data + b * per, v = variance.data + b * per
            let lv = logVar.data + b * per, x0 = xstart.data + b * per

            // Variance.
            switch varType {
            case .learnedRange:
                let minLog = Self.coefficient(posteriorLogVarianceClipped, tb)
                let maxLog = Self.coefficient(logBetas, tb)
                let values = eps + per  // the second C channels
                for i in 0..<per {
                    let frac = (values[i] + 1) / 2
                    let l = frac * maxLog + (1 - frac) * minLog
                    lv[i] = l
                    v[i] = Foundation.exp(l)
                }
            case .fixedSmall, .fixedLarge:
                let (varD, logD): (Double, Double)
                if varType == .fixedSmall {
                    varD = posteriorVariance[tb]
                    logD = posteriorLogVarianceClipped[tb]
                } else {
                    // np.append(posterior_variance[1], betas[1:]) and its log.
                    varD = tb == 0 ? posteriorVariance[min(1, numTimesteps - 1)] : betas[tb]
                    logD = Foundation.log(varD)
                }
                let vf = Float(varD), lf = Float(logD)
                for i in 0..<per { v[i] = vf; lv[i] = lf }
            }

            // x0 prediction.
            switch meanType {
            case .startX:
                for i in 0..<per { x0[i] = eps[i] }
            case .epsilon:
                let a = Self.coefficient(sqrtRecipAlphasCumprod, tb)
                let c = Self.coefficient(sqrtRecipm1AlphasCumprod, tb)
                for i in 0..<per { x0[i] = a * xs[i] - c * eps[i] }
            }
            if clipDenoised {
                for i in 0..<per { x0[i] = min(max(x0[i], -1), 1) }
            }

            // Posterior mean q(x_{t-1} | x_t, x0).
            let c1 = Self.coefficient(posteriorMeanCoef1, tb)
            let c2 = Self.coefficient(posteriorMeanCoef2, tb)
            for i in 0..<per { m[i] = c1 * x0[i] + c2 * xs[i] }
        }
        return PMeanVariance(mean: mean, variance: variance, logVariance: logVar, predXstart: xstart)
    }

    /// One ancestral step (`p_sample`): mean + exp(log var / 2) · noise, with no
    /// noise at t = 0 (the reference's `nonzero_mask`). `noise` may be nil only
    /// when every t is 0.
    public func pSample(modelOutput: Tensor, x: Tensor, t: [Int], noise: Tensor?, clipDenoised: Bool) throws -> Tensor {
        let p = try pMeanVariance(modelOutput: modelOutput, x: x, t: t, clipDenoised: clipDenoised)
        let out = p.mean
        let batch = x.shape[0], per = x.count / batch
        for b in 0..<batch where t[b] != 0 {
            guard let n = noise, n.shape == x.shape else {
                throw DiffusionError.shapeMismatch(what: "p_sample noise", expected: x.shape, found: noise?.shape ?? [])
            }
            let m = out.data + b * per, lv = p.logVariance.data + b * per, e = n.data + b * per
            for i in 0..<per { m[i] = m[i] + Foundation.exp(0.5 * lv[i]) * e[i] }
        }
        return out
    }

    /// One DDIM step (`ddim_sample`, Song et al. eq. 12) with `eta`; the noise
    /// term is skipped where it is zero (eta = 0 or t = 0).
    public func ddimSample(modelOutput: Tensor, x: Tensor, t: [Int], noise: Tensor?, eta: Float,
                           clipDenoised: Bool) throws -> Tensor {
        let p = try pMeanVariance(modelOutput: modelOutput, x: x, t: t, clipDenoised: clipDenoised)
        let batch = x.shape[0], per = x.count / batch
        let out = Tensor(uninitialized: x.shape)
        for b in 0..<batch {
            let tb = t[b]
            let a = Self.coefficient(sqrtRecipAlphasCumprod, tb)
            let c = Self.coefficient(sqrtRecipm1AlphasCumprod, tb)
            let alphaBar = Self.coefficient(alphasCumprod, tb)
            let alphaBarPrev = Self.coefficient(alphasCumprodPrev, tb)
            let sigma = eta * ((1 - alphaBarPrev) / (1 - alphaBar)).squareRoot()
                * (1 - alphaBar / alphaBarPrev).squareRoot()
            let sqrtPrev = alphaBarPrev.squareRoot()
            let dirCoef = (1 - alphaBarPrev - sigma * sigma).squareRoot()
            let xs = x.data + b * per, x0 = p.predXstart.data + b * per, o = out.data + b * per
            for i in 0..<per {
                // The reference re-derives eps from the (possibly clipped) x0.
                let eps = (a * xs[i] - x0[i]) / c
                o[i] = x0[i] * sqrtPrev + dirCoef * eps
            }
            if tb != 0 && sigma != 0 {
                guard let n = noise, n.shape == x.shape else {
                    throw DiffusionError.shapeMismatch(what: "ddim noise", expected: x.shape, found: noise?.shape ?? [])
                }
                let e = n.data + b * per
                for i in 0..<per { o[i] = o[i] + sigma * e[i] }
            }
        }
        return out
    }
}
