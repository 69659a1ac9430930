import Foundation
import PipelineTensor
import PipelineDiT

/// The result of one loss evaluation with gradients.
public struct StepResult {
    /// Mean over the batch of mse + vb (learned sigma) or of mse (fixed variances).
    public let loss: Float
    public let mse: [Float]
    /// The vb term per sample; nil for a `learn_sigma=False` model, whose loss has none.
    public let vb: [Float]?
}

extension TrainableDiT {
    /// Zeroes the gradients, then computes the batch-mean ADM loss of `x0` at timesteps `t` with
    /// `noise` and labels `y` (already dropped where label dropout applies) and accumulates its
    /// gradient into every trainable parameter. The loss follows `create_diffusion(learn_sigma=)`:
    /// mse + vb for a learned-sigma model, mse alone for a fixed-variance one.
    public func lossAndGradients(x0: Tensor, t: [Int], noise: Tensor, y: [Int], diffusion: ADMTrainingLoss) throws -> StepResult {
        guard x0.shape == noise.shape, t.count == x0.shape[0] else {
            throw DiTError.badInput("x0 \(x0.shape), noise \(noise.shape) and \(t.count) timesteps do not match")
        }
        zeroGradients()
        // Single-threaded BLAS calls, split across the threads by the kernels themselves.
        return try BLAS.withThreads(1) {
            let xT = diffusion.qSample(x0, t: t, noise: noise)
            let (out, acts) = try trainingForward(xT, t: t.map { Float($0) }, y: y)
            let (loss, mse, vb, dOutput): ([Float], [Float], [Float]?, Tensor)
            if config.learnSigma {
                guard config.prediction == .epsilon else {
                    throw DiTError.badInput("the learned-variance loss is the epsilon-prediction one; an x0-predicting model trains with the MSE only")
                }
                let terms = try diffusion.lossAndGradient(output: out, x0: x0, xT: xT, t: t, noise: noise)
                (loss, mse, vb, dOutput) = (terms.loss, terms.mse, terms.vb, terms.dOutput)
            } else {
                // ADM's training_losses: target = {START_X: x_start, EPSILON: noise}[model_mean_type].
                let target = config.prediction == .xStart ? x0 : noise
                let terms = try diffusion.mseLossAndGradient(output: out, t: t, target: target)
                (loss, mse, vb, dOutput) = (terms.mse, terms.mse, nil, terms.dOutput)
            }
            backward(dOutput, acts: acts)
            let mean = loss.reduce(0.0) { $0 + Double($1) } / Double(loss.count)
            return StepResult(loss: Float(mean), mse: mse, vb: vb)
        }
    }
}
