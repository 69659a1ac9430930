import Foundation
import PipelineTensor
import PipelineDiT

/// ADM's `GaussianDiffusion.training_losses` as DiT trains with it (`create_diffusion(timestep_respacing="")`:
/// epsilon prediction, learned-range variance, `LossType.MSE`), with its gradient with respect to the
/// model output. With `learn_sigma=False` (FIXED_LARGE variances) the loss is the MSE alone
/// (`mseLossAndGradient`); the rest of this comment is about the learned-range loss.
///
///     loss = mean_flat((noise − eps)²) + vb,   vb = KL(q(x_{t−1}|x_t,x_0) ‖ p(x_{t−1}|x_t))  (t > 0)
///                                                 = −log p(x_0|x_1) discretised (t = 0), in bits/dim
///
/// Reference quirk: the vb term sees `frozen_out = cat([eps.detach(), var_values])` — a stop-gradient
/// on the mean, so vb trains only the variance channels and the MSE only the eps channels.
/// Schedule coefficients are float64 arrays cast to float32 per timestep (`_extract_into_tensor`);
/// the per-element arithmetic here runs in float64.
public struct ADMTrainingLoss {
    public let betas: [Double]
    let sqrtAC: [Double], sqrtOneMinusAC: [Double], sqrtRecipAC: [Double], sqrtRecipM1AC: [Double]
    let coef1: [Double], coef2: [Double], logVarClipped: [Double], logBetas: [Double]
    public var numTimesteps: Int { betas.count }

    public init(betas: [Double]) {
        self.betas = betas
        var ac: [Double] = [], run = 1.0
        for b in betas { run *= 1 - b; ac.append(run) }
        let prev = [1.0] + ac.dropLast()
        sqrtAC = ac.map { $0.squareRoot() }
        sqrtOneMinusAC = ac.map { (1 - $0).squareRoot() }
        sqrtRecipAC = ac.map { (1 / $0).squareRoot() }
        sqrtRecipM1AC = ac.map { (1 / $0 - 1).squareRoot() }
        let postVar = betas.indices.map { betas[$0] * (1 - prev[$0]) / (1 - ac[$0]) }
        // log(append(posterior_variance[1], posterior_variance[1:])): the t = 0 variance is 0.
        logVarClipped = betas.indices.map { Foundation.log(postVar[$0 == 0 ? min(1, betas.count - 1) : $0]) }
        coef1 = betas.indices.map { betas[$0] * prev[$0].squareRoot() / (1 - ac[$0]) }
        coef2 = betas.indices.map { (1 - prev[$0]) * (1 - betas[$0]).squareRoot() / (1 - ac[$0]) }
        logBetas = betas.map { Foundation.log($0) }
    }

    /// `get_named_beta_schedule("linear", steps)`: linspace(1e-4·s, 0.02·s, steps), s = 1000 / steps.
    public static func linear(steps: Int = 1000) -> ADMTrainingLoss {
        let scale = 1000.0 / Double(steps)
        let start = scale * 0.0001, end = scale * 0.02
        let betas = (0..<steps).map { i in steps == 1 ? start : start + Double(i) * (end - start) / Double(steps - 1) }
        return ADMTrainingLoss(betas: betas)
    }

    @inline(__always) static func f32(_ v: Double) -> Double { Double(Float(v)) }

    /// `q_sample`: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·noise.
    public func qSample(_ x0: Tensor, t: [Int], noise: Tensor) -> Tensor {
        let n = x0.shape[0], per = x0.count / max(n, 1)
        let out = Tensor(uninitialized: x0.shape)
        for i in 0..<n {
            let a = Float(sqrtAC[t[i]]), b = Float(sqrtOneMinusAC[t[i]])
            for j in (i * per)..<((i + 1) * per) { out.data[j] = a * x0.data[j] + b * noise.data[j] }
        }
        return out
    }

    /// Per-sample loss terms and d(mean over the batch of loss)/d(model output).
    /// `output` is (N, 2C, H, W) (eps | variance values in [−1, 1]).
    public func lossAndGradient(output: Tensor, x0: Tensor, xT: Tensor, t: [Int], noise: Tensor)
        throws -> (loss: [Float], mse: [Float], vb: [Float], dOutput: Tensor) {
        let n = x0.shape[0], c = x0.shape[1], per = x0.count / max(n, 1)
        guard output.rank == 4, output.shape[0] == n, output.shape[1] == 2 * c, output.count == 2 * x0.count else {
            throw DiTError.badInput("the learned-sigma loss needs a (N, 2C, H, W) output for x0 \(x0.shape), got \(output.shape)")
        }
        for (i, tv) in t.enumerated() where tv < 0 || tv >= numTimesteps {
            throw DiTError.badInput("timestep \(tv) at index \(i) is outside 0..<\(numTimesteps)")
        }
        let grad = Tensor(uninitialized: output.shape)
        var loss = [Float](repeating: 0, count: n), mse = loss, vb = loss
        let ln2 = Foundation.log(2.0), inv = 1 / Double(per), batchScale = 1 / Double(n)
        for i in 0..<n {
            let ti = t[i], f = ADMTrainingLoss.f32
            let c1 = f(coef1[ti]), c2 = f(coef2[ti]), minLog = f(logVarClipped[ti]), maxLog = f(logBetas[ti])
            let sr = f(sqrtRecipAC[ti]), srm1 = f(sqrtRecipM1AC[ti])
            let eps = output.data + i * 2 * per, v = eps + per
            let dEps = grad.data + i * 2 * per, dV = dEps + per
            var sq = 0.0, vbSum = 0.0
            for j in 0..<per {
                let x0j = Double(x0.data[i * per + j]), xtj = Double(xT.data[i * per + j])
                let e = Double(eps[j]), nz = Double(noise.data[i * per + j])
                sq += (nz - e) * (nz - e)
                dEps[j] = Float(2 * (e - nz) * inv * batchScale)
                let frac = (Double(v[j]) + 1) / 2
                let mlv = frac * maxLog + (1 - frac) * minLog
                let dMlvDv = (maxLog - minLog) / 2
                let modelMean = c1 * (sr * xtj - srm1 * e) + c2 * xtj
                let dTerm: Double  // d(term)/d(mlv)
                if ti == 0 {
                    let (nll, dNllDls) = ADMTrainingLoss.decoderNLL(x: x0j, mean: modelMean, logScale: 0.5 * mlv)
                    vbSum += nll
                    dTerm = dNllDls * 0.5
                } else {
                    let trueMean = c1 * x0j + c2 * xtj, tlv = minLog
                    let diff = trueMean - modelMean
                    vbSum += 0.5 * (-1 + mlv - tlv + Foundation.exp(tlv - mlv) + diff * diff * Foundation.exp(-mlv))
                    dTerm = 0.5 * (1 - Foundation.exp(tlv - mlv) - diff * diff * Foundation.exp(-mlv))
                }
                dV[j] = Float(dTerm * dMlvDv * inv / ln2 * batchScale)
            }
            mse[i] = Float(sq * inv)
            vb[i] = Float(vbSum * inv / ln2)
            loss[i] = mse[i] + vb[i]
        }
        return (loss, mse, vb, grad)
    }

    /// The loss `create_diffusion(learn_sigma=False)` trains with (FIXED_LARGE variances,
    /// `LossType.MSE`): `training_losses` has no vb term then, and `loss = mse = mean_flat((target − output)²)`
    /// with `target` the noise (epsilon prediction) or x0 (`predict_xstart`, ADM's `START_X` target).
    /// `output` is (N, C, H, W), the prediction only. Returns the per-sample MSE and
    /// d(mean over the batch of mse)/d(output).
    public func mseLossAndGradient(output: Tensor, t: [Int], target: Tensor) throws -> (mse: [Float], dOutput: Tensor) {
        let n = target.shape[0], per = target.count / max(n, 1)
        guard output.shape == target.shape else {
            throw DiTError.badInput("the MSE-only loss (learn_sigma=False) needs an output of its target's shape \(target.shape), got \(output.shape)")
        }
        for (i, tv) in t.enumerated() where tv < 0 || tv >= numTimesteps {
            throw DiTError.badInput("timestep \(tv) at index \(i) is outside 0..<\(numTimesteps)")
        }
        let grad = Tensor(uninitialized: output.shape)
        var mse = [Float](repeating: 0, count: n)
        let inv = 1 / Double(per), scale = Float(2 * inv / Double(n))
        for i in 0..<n {
            let e = output.data + i * per, z = target.data + i * per, g = grad.data + i * per
            var sq = 0.0
            for j in 0..<per {
                let diff = e[j] - z[j]
                sq += Double(diff) * Double(diff)
                g[j] = scale * diff
            }
            mse[i] = Float(sq * inv)
        }
        return (mse, grad)
    }

    /// −`discretized_gaussian_log_likelihood` of one value (data in [−1, 1], 8-bit bins) and its
    /// derivative in the log scale; the CDF is ADM's tanh approximation.
    ///
    /// Computed in float32 as the reference does, with autograd's derivatives (tanh' = 1 − tanh²
    /// from the rounded output): where tanh rounds to ±1 the two CDFs of a bin coincide, the
    /// reference's `clamp(min=1e-12)` takes over and the gradient is exactly zero — float64
    /// arithmetic would instead give −log of a tiny positive width and a huge gradient.
    static func decoderNLL(x xd: Double, mean: Double, logScale: Double) -> (Double, Double) {
        let x = Float(xd)
        let centered = x - Float(mean), invStd = expf(-Float(logScale))
        let plusIn = invStd * (centered + 1 / 255.0 as Float), minIn = invStd * (centered - 1 / 255.0 as Float)
        let (cdfPlus, dPlus) = approxCDF(plusIn), (cdfMin, dMin) = approxCDF(minIn)
        // d(plusIn)/d(logScale) = −plusIn, likewise minIn.
        let dCdfPlus = dPlus * -plusIn, dCdfMin = dMin * -minIn
        let floor: Float = 1e-12
        let (value, grad): (Float, Float)
        if x < -0.999 {
            (value, grad) = cdfPlus >= floor ? (-logf(cdfPlus), -dCdfPlus / cdfPlus) : (-logf(floor), 0)
        } else if x > 0.999 {
            let r = 1 - cdfMin
            (value, grad) = r >= floor ? (-logf(r), dCdfMin / r) : (-logf(floor), 0)
        } else {
            let delta = cdfPlus - cdfMin
            (value, grad) = delta >= floor ? (-logf(delta), -(dCdfPlus - dCdfMin) / delta) : (-logf(floor), 0)
        }
        return (Double(value), Double(grad))
    }

    /// `approx_standard_normal_cdf`: 0.5·(1 + tanh(√(2/π)·(x + 0.044715·x³))) and its derivative,
    /// in float32.
    static func approxCDF(_ x: Float) -> (Float, Float) {
        let c = Float((2 / Double.pi).squareRoot())
        let th = tanhf(c * (x + 0.044715 * (x * x * x)))
        return (0.5 * (1 + th), 0.5 * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x))
    }
}
