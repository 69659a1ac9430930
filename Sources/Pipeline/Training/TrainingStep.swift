import Foundation
import PipelineTensor
import PipelineDiT

/// The result of one loss evaluation with gradients.
public struct StepResult {
    /// Mean over the batch of mse + vb.
    public let loss: Float
    public let mse: [Float], vb: [Float]
}

extension TrainableDiT {
    /// Zeroes the gradients, then computes the batch-mean ADM loss of `x0` at timesteps `t` with
    /// `noise` and labels `y` (already dropped where label dropout applies) and accumulates its
    /// gradient into every trainable parameter.
    public func lossAndGradients(x0: Tensor, t: [Int], noise: Tensor, y: [Int], diffusion: ADMTrainingLoss) throws -> StepResult {
        guard config.learnSigma else {
            throw DiTError.badInput("training needs a learn_sigma model (the ADM loss with the vb term)")
        }
        guard x0.shape == noise.shape, t.count == x0.shape[0] else {
            throw DiTError.badInput("x0 \(x0.shape), noise \(noise.shape) and \(t.count) timesteps do not match")
        }
        zeroGradients()
        return try BLAS.withThreads(Threads.count) {
            let xT = diffusion.qSample(x0, t: t, noise: noise)
            let (out, acts) = try trainingForward(xT, t: t.map { Float($0) }, y: y)
            let terms = try diffusion.lossAndGradient(output: out, x0: x0, xT: xT, t: t, noise: noise)
            backward(terms.dOutput, acts: acts)
            let mean = terms.loss.reduce(0.0) { $0 + Double($1) } / Double(terms.loss.count)
            return StepResult(loss: Float(mean), mse: terms.mse, vb: terms.vb)
        }
    }
}
