import PipelineTensor
/// Which reverse process draws the samples.
public enum SamplerKind: String, CaseIterable {
    /// Ancestral sampling (`p_sample_loop`).
    case ddpm
    /// DDIM (`ddim_sample_loop`) with `eta`.
    case ddim

    /// The respacing DiT uses for `steps` sampling steps: "K" for DDPM, the DDIM
    /// paper's integer stride "ddimK" for DDIM.
    public func defaultRespacing(steps: Int) -> Respacing {
        self == .ddpm ? .sections([steps]) : .ddim(steps)
    }
}

/// The settings of a sampling run (everything except the model and the noise).
public struct SamplerSettings {
    public var kind: SamplerKind
    /// Classifier-free guidance scale; 1 means no guidance (one forward pass).
    public var cfgScale: Float
    /// DDIM's eta (0 = deterministic); ignored by DDPM.
    public var eta: Float
    /// Clamp x0 predictions to [-1, 1]; DiT's sample.py uses false for latents.
    public var clipDenoised: Bool
    /// Guide every eps channel instead of DiT's first 3 (its reference quirk).
    public var guideAllChannels: Bool
    /// How the model is called per step (default: per sample, deterministic).
    public var batching: ModelBatching
    /// Guidance only at model timesteps in this interval (nil: at every step).
    public var cfgInterval: GuidanceInterval?
    /// A diffusers scheduler instead of ADM's `kind` (`SchedulerSampler`).
    public var scheduler: SchedulerConfig?

    public init(kind: SamplerKind, cfgScale: Float = 1, eta: Float = 0, clipDenoised: Bool = false,
                guideAllChannels: Bool = false, batching: ModelBatching = .deterministic,
                cfgInterval: GuidanceInterval? = nil, scheduler: SchedulerConfig? = nil) {
        self.kind = kind
        self.cfgInterval = cfgInterval
        self.scheduler = scheduler
        self.batching = batching
        self.guideAllChannels = guideAllChannels
        self.cfgScale = cfgScale
        self.eta = eta
        self.clipDenoised = clipDenoised
    }

    public func validate() throws {
        guard cfgScale.isFinite, cfgScale >= 1 else { throw DiffusionError.cfgScaleBelowOne(cfgScale) }
        guard eta.isFinite, eta >= 0 else { throw DiffusionError.invalidArgument("DDIM eta \(eta) must be >= 0") }
        if clipDenoised, scheduler != nil {
            throw DiffusionError.invalidArgument("--clip-denoised is for the ddpm and ddim samplers; a diffusers scheduler clips by its config's clip_sample")
        }
    }
}

/// Runs a sampler loop over one batch. All randomness comes from the noise
/// source, addressed by each row's global sample index: the result of a row
/// depends only on its index, label and the model (whose forward pass is
/// row-independent), never on the batch it is drawn in.
public struct DiffusionSampler {
    public let diffusion: GaussianDiffusion
    public let settings: SamplerSettings

    public init(diffusion: GaussianDiffusion, settings: SamplerSettings) throws {
        try settings.validate()
        self.diffusion = diffusion
        self.settings = settings
    }

    public var numSteps: Int { diffusion.numTimesteps }

    /// Samples `indices` with class `labels` (one each). `onStep` is called after
    /// each of the `numSteps` steps; an error it throws ends the sampling there (a worker's
    /// stop request, seen between two steps' model calls rather than after the whole batch).
    public func sample(model: NoisePredictionModel, indices: [Int], labels: [Int], noise: NoiseSource,
                       onStep: ((Int) throws -> Void)? = nil) throws -> Tensor {
        try settings.checkInputs(model: model, indices: indices, labels: labels)
        let n = indices.count
        guard n > 0 else { return Tensor(zeros: [0, model.inChannels, model.inputSize, model.inputSize]) }
        let sampleShape = [model.inChannels, model.inputSize, model.inputSize]
        var x = try noise.normal(indices: indices, sampleShape: sampleShape, purpose: .initialLatent)
        for s in 0..<numSteps {
            let t = numSteps - 1 - s
            let tb = [Int](repeating: t, count: n)
            let modelT = diffusion.modelTimestep(t)
            let output = try settings.modelOutput(model, x: x, labels: labels, t: modelT, guided: settings.guides(at: Double(modelT)))
            switch settings.kind {
            case .ddpm:
                let eps = t == 0 ? nil : try noise.normal(indices: indices, sampleShape: sampleShape,
                                                           purpose: .samplerStep, step: s)
                x = try diffusion.pSample(modelOutput: output, x: x, t: tb, noise: eps,
                                          clipDenoised: settings.clipDenoised)
            case .ddim:
                let eps = (t == 0 || settings.eta == 0) ? nil
                    : try noise.normal(indices: indices, sampleShape: sampleShape, purpose: .samplerStep, step: s)
                x = try diffusion.ddimSample(modelOutput: output, x: x, t: tb, noise: eps, eta: settings.eta,
                                             clipDenoised: settings.clipDenoised)
            }
            try onStep?(s)
        }
        return x
    }
}
