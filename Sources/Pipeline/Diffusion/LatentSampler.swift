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
    /// Samples `indices` with class `labels` (one each); `onStep` after each step (an error it
    /// throws, e.g. a worker told to stop, ends the sampling there).
    func sample(model: NoisePredictionModel, indices: [Int], labels: [Int], noise: NoiseSource,
                onStep: ((Int) throws -> Void)?) throws -> Tensor
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
        guard (diffusion.meanType == .startX) == model.predictsXstart else {
            throw DiffusionError.invalidArgument(model.predictsXstart
                ? "the model predicts x0 (predict_xstart) but the diffusion expects the noise"
                : "the model predicts the noise but the diffusion expects x0 (predict_xstart)")
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

extension SamplerSettings {
    /// The checks every sampler makes before a batch: one label per sample, labels in range
    /// (the null class included when the model has one), guidance only with a null class.
    func checkInputs(model: NoisePredictionModel, indices: [Int], labels: [Int]) throws {
        guard labels.count == indices.count else {
            throw DiffusionError.invalidArgument("\(labels.count) labels for \(indices.count) samples")
        }
        try model.checkLabels(labels, indices: indices)
        guard cfgScale == 1 || model.supportsGuidance else {
            throw DiffusionError.invalidArgument(
                "the model has no null class (class_dropout_prob = 0): classifier-free guidance needs --cfg-scale 1")
        }
    }

    /// One step's model output for every row of `x` at timestep `t`, called per `batching`:
    /// the conditional output, or with `guided` the conditional rows of `forward_with_cfg` on
    /// (x, x) with (labels, null) (`guideAllChannels` picks DiT's 3-channel quirk or all).
    func modelOutput(_ model: NoisePredictionModel, x: Tensor, labels: [Int], t: Float, guided: Bool) throws -> Tensor {
        let n = x.shape[0]
        return try batching.run(rows: n) { rows in
            let xr = rows.count == n ? x : x.slice(rows)
            let yr = Array(labels[rows])
            let m = rows.count
            guard guided else { return try model.forward(xr, t: [Float](repeating: t, count: m), y: yr) }
            // DiT sample.py: z = cat([z, z]), y = cat([y, null]); the reference chain also
            // carries the second half, but forward_with_cfg reads only the first, so the first
            // half's result is the same without it.
            let full = try model.forwardWithCFG(
                Tensor.concat([xr, xr]), t: [Float](repeating: t, count: 2 * m),
                y: yr + [Int](repeating: model.numClasses, count: m), scale: cfgScale, guideAllChannels: guideAllChannels)
            guard full.rank == 4, full.shape[0] == 2 * m else {
                throw DiffusionError.shapeMismatch(what: "forward_with_cfg output", expected: [2 * m] + Array(x.shape.dropFirst()),
                                                   found: full.shape)
            }
            return full.slice(0..<m)
        }
    }
}
