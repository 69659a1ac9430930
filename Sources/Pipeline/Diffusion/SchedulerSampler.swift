import Foundation
import PipelineTensor

/// Drives a diffusers scheduler as diffusers' `DiTPipeline` does (the loop the
/// `samplers/tiny` fixture records): x = z_T · init_noise_sigma; per timestep t,
/// x_in = scale_model_input(x, t), the model at t (a float: Euler / Heun / Karras timesteps
/// are fractional) for the labels and, when guided, the null label; guidance
/// uncond + s (cond - uncond) on all latent channels; eps = the first C channels of a
/// learned-sigma output; x = step(eps, t, x). An x0-predicting model (`predict_xstart`) is driven as
/// diffusers drives `prediction_type="sample"`: its x0 becomes eps = (x_t − √ᾱ_t·x0) / √(1 − ᾱ_t) on the
/// scheduler's training schedule (ᾱ_t = 1 / (1 + σ_t²) with σ interpolated at fractional t, as
/// Euler's and Heun's sigmas are), which every scheduler turns back into the same x0.
///
/// The model is called per sample (`ModelBatching`), the initial noise drawn by sample index,
/// and every scheduler's arithmetic is row-wise, so a row depends only on its index and label.
public struct SchedulerSampler: LatentSampler {
    public let scheduler: DiffusersScheduler
    public let settings: SamplerSettings

    public init(scheduler: DiffusersScheduler, settings: SamplerSettings) throws {
        try settings.validate()
        self.scheduler = scheduler
        self.settings = settings
    }

    public var numSteps: Int { scheduler.callTimesteps.count }
    public var modelTimesteps: [Double] { scheduler.callTimesteps }

    public func check(model: NoisePredictionModel) throws {}

    public func sample(model: NoisePredictionModel, indices: [Int], labels: [Int], noise: NoiseSource,
                       onStep: ((Int) throws -> Void)? = nil) throws -> Tensor {
        try settings.checkInputs(model: model, indices: indices, labels: labels)
        let n = indices.count, c = model.inChannels
        let sampleShape = [c, model.inputSize, model.inputSize]
        guard n > 0 else { return Tensor(zeros: [0] + sampleShape) }
        let sigma0 = scheduler.initNoiseSigma
        var x = SchedulerMath.map(try noise.normal(indices: indices, sampleShape: sampleShape, purpose: .initialLatent)) {
            $0 * sigma0
        }
        let state = scheduler.makeState()
        let sigmas = model.predictsXstart
            ? SchedulerSpacing.interpolated(scheduler.callTimesteps, try SchedulerTrainingSchedule(scheduler.config)) : nil
        for (i, t) in scheduler.callTimesteps.enumerated() {
            let xin = scheduler.inputDivisor(call: i).map { d in SchedulerMath.map(x) { $0 / d } } ?? x
            let output = try settings.modelOutput(model, x: xin, labels: labels, t: Float(t), guided: settings.guides(at: t))
            var eps = try Self.firstChannels(output, c)
            if let sigmas { eps = Self.epsilon(fromXstart: eps, xT: xin, sigma: sigmas[i]) }
            x = try state.step(eps: eps, call: i, sample: x)
            try onStep?(i)
        }
        return x
    }

    /// eps = (x_t − √ᾱ·x0) / √(1 − ᾱ) with ᾱ = 1 / (1 + σ²), for the variance-preserving input x_t.
    static func epsilon(fromXstart x0: Tensor, xT: Tensor, sigma: Double) -> Tensor {
        let abar = 1 / (1 + sigma * sigma)
        let a = Float(abar.squareRoot()), inv = Float(1 / (1 - abar).squareRoot())
        let out = Tensor(uninitialized: x0.shape)
        for j in 0..<x0.count { out.data[j] = (xT.data[j] - a * x0.data[j]) * inv }
        return out
    }

    /// The eps half of a learned-sigma output `[N, 2C, H, W]` (or all of a `[N, C, H, W]` one).
    static func firstChannels(_ t: Tensor, _ c: Int) throws -> Tensor {
        guard t.rank == 4, t.shape[1] >= c else {
            throw DiffusionError.shapeMismatch(what: "model output", expected: [t.shape.first ?? 0, c, -1, -1], found: t.shape)
        }
        if t.shape[1] == c { return t }
        let n = t.shape[0], plane = t.shape[2] * t.shape[3], oc = t.shape[1]
        let out = Tensor(uninitialized: [n, c, t.shape[2], t.shape[3]])
        for r in 0..<n { out.data.advanced(by: r * c * plane).update(from: t.data + r * oc * plane, count: c * plane) }
        return out
    }
}
