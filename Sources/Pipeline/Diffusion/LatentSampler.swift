import Foundation
import PipelineTensor

/// A reverse process that turns the noise of some global sample indices into latents:
/// ADM's DDPM/DDIM (`DiffusionSampler`) or a diffusers scheduler (`SchedulerSampler`).
/// Every implementation draws from the noise source by sample index and calls the model per
/// sample under `ModelBatching.perSample`, so a row's result depends only on its index.
public protocol LatentSampler {
    /// Model-call steps per batch (progress units).
    var numSteps: Int { get }
    /// The settings (guidance, batching) of the run.
    var settings: SamplerSettings { get }
    /// The timestep fed to the model at each step, in order.
    var modelTimesteps: [Double] { get }
    /// Refuses a model the sampler cannot drive.
    func check(model: NoisePredictionModel) throws
    /// Samples `indices` with class `labels` (one each); `onStep` after each step.
    func sample(model: NoisePredictionModel, indices: [Int], labels: [Int], noise: NoiseSource,
                onStep: ((Int) -> Void)?) throws -> Tensor
}

extension LatentSampler {
    /// Model evaluations per sample: 2 for a guided step (conditional + null label), else 1.
    public var modelEvaluationsPerSample: Int { modelTimesteps.reduce(0) { $0 + (settings.guides(at: $1) ? 2 : 1) } }
}

extension DiffusionSampler: LatentSampler {
    public var modelTimesteps: [Double] { (0..<numSteps).map { Double(diffusion.modelTimestep(numSteps - 1 - $0)) } }

    public func check(model: NoisePredictionModel) throws {
        guard diffusion.varType == .learnedRange || !model.learnsSigma else {
            throw DiffusionError.invalidArgument("the model learns sigma but the diffusion uses a fixed variance")
        }
    }
}

extension NoisePredictionModel {
    /// Labels a sampler accepts: 0 ..< numClasses, and the null class `numClasses` when the
    /// model has one (unconditional sampling, as the reference's `forward` takes it).
    func checkLabels(_ labels: [Int], indices: [Int]) throws {
        let top = supportsGuidance ? numClasses : numClasses - 1
        for (r, y) in labels.enumerated() where y < 0 || y > top {
            throw DiffusionError.labelOutOfRange(label: y, index: indices[r], numClasses: top + 1)
        }
    }
}
