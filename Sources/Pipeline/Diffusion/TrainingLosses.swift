import Foundation
import PipelineTensor

/// `training_losses` terms, one value per sample.
public struct TrainingLossTerms {
    public var loss: [Float]
    public var mse: [Float]?
    /// The variational-bound term (bits per dimension); present for the learned
    /// variance or a KL loss.
    public var vb: [Float]?
    public var xT: Tensor
}

extension GaussianDiffusion {
    /// `_vb_terms_bpd` for a model output: KL(q(x_{t-1}|x_t,x0) || p(x_{t-1}|x_t))
    /// in bits per dimension, and at t = 0 the discretised decoder NLL instead.
    public func vbTermsBPD(modelOutput: Tensor, xStart: Tensor, xT: Tensor, t: [Int], clipDenoised: Bool) throws -> [Float] {
        let p = try pMeanVariance(modelOutput: modelOutput, x: xT, t: t, clipDenoised: clipDenoised)
        let batch = xT.shape[0], per = xT.count / batch
        let ln2 = Foundation.log(2.0)
        return (0..<batch).map { b in
            let tb = t[b]
            let x0 = xStart.data + b * per, xt = xT.data + b * per
            let m = p.mean.data + b * per, lv = p.logVariance.data + b * per
            var sum = 0.0
            if tb == 0 {
                for i in 0..<per {
                    sum -= Double(DiffusionUtils.discretizedGaussianLogLikelihood(x: x0[i], mean: m[i], logScale: 0.5 * lv[i]))
                }
            } else {
                // q_posterior_mean_variance(x0, x_t, t).
                let c1 = Self.coefficient(posteriorMeanCoef1, tb), c2 = Self.coefficient(posteriorMeanCoef2, tb)
                let trueLogVar = Self.coefficient(posteriorLogVarianceClipped, tb)
                for i in 0..<per {
                    let trueMean = c1 * x0[i] + c2 * xt[i]
                    sum += Double(DiffusionUtils.normalKL(mean1: trueMean, logvar1: trueLogVar, mean2: m[i], logvar2: lv[i]))
                }
            }
            // mean_flat(...) / np.log(2.0): the float32 mean divided by a float64 scalar.
            return Float(Double(Float(sum / Double(per))) / ln2)
        }
    }

    /// `training_losses(model, x_start, t, noise=noise)` for epsilon or x0
    /// prediction. `model` is called once on x_t with the original-chain timesteps.
    public func trainingLosses(xStart: Tensor, t: [Int], noise: Tensor,
                               model: (Tensor, [Float]) throws -> Tensor) throws -> TrainingLossTerms {
        let xT = try qSample(xStart, t: t, noise: noise)
        let output = try model(xT, t.map(modelTimestep))
        let batch = xStart.shape[0], channels = xStart.shape[1], per = xStart.count / batch
        var expected = xStart.shape
        expected[1] = modelOutputChannels(inChannels: channels)
        guard output.shape == expected else {
            throw DiffusionError.shapeMismatch(what: "model output", expected: expected, found: output.shape)
        }
        if lossType.isVB {
            var vb = try vbTermsBPD(modelOutput: output, xStart: xStart, xT: xT, t: t, clipDenoised: false)
            if lossType == .rescaledKL { vb = vb.map { $0 * Float(numTimesteps) } }
            return TrainingLossTerms(loss: vb, mse: nil, vb: vb, xT: xT)
        }
        var vb: [Float]? = nil
        if varType == .learnedRange {
            // Reference: the vb term sees the mean prediction through
            // `model_output.detach()` (stop-gradient) so it trains only the
            // variance; forward values are unchanged.
            var terms = try vbTermsBPD(modelOutput: output, xStart: xStart, xT: xT, t: t, clipDenoised: false)
            if lossType == .rescaledMSE { terms = terms.map { $0 * (Float(numTimesteps) / 1000.0) } }
            vb = terms
        }
        let target = meanType == .epsilon ? noise : xStart
        let outPer = output.count / batch
        let mse: [Float] = (0..<batch).map { b in
            let o = output.data + b * outPer, g = target.data + b * per
            var s = 0.0
            for i in 0..<per {
                let d = g[i] - o[i]
                s += Double(d * d)
            }
            return Float(s / Double(per))
        }
        let loss = vb.map { v in zip(mse, v).map { $0 + $1 } } ?? mse
        return TrainingLossTerms(loss: loss, mse: mse, vb: vb, xT: xT)
    }
}
