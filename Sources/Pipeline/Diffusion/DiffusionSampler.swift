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

    public init(kind: SamplerKind, cfgScale: Float = 1, eta: Float = 0, clipDenoised: Bool = false,
                guideAllChannels: Bool = false, batching: ModelBatching = .deterministic) {
        self.kind = kind
        self.batching = batching
        self.guideAllChannels = guideAllChannels
        self.cfgScale = cfgScale
        self.eta = eta
        self.clipDenoised = clipDenoised
    }

    public func validate() throws {
        guard cfgScale.isFinite, cfgScale >= 1 else { throw DiffusionError.cfgScaleBelowOne(cfgScale) }
        guard eta.isFinite, eta >= 0 else { throw DiffusionError.invalidArgument("DDIM eta \(eta) must be >= 0") }
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
    /// each of the `numSteps` steps.
    public func sample(model: NoisePredictionModel, indices: [Int], labels: [Int], noise: NoiseSource,
                       onStep: ((Int) -> Void)? = nil) throws -> Tensor {
        guard labels.count == indices.count else {
            throw DiffusionError.invalidArgument("\(labels.count) labels for \(indices.count) samples")
        }
        for (r, y) in labels.enumerated() where y < 0 || y >= model.numClasses {
            throw DiffusionError.labelOutOfRange(label: y, index: indices[r], numClasses: model.numClasses)
        }
        let n = indices.count
        guard n > 0 else { return Tensor(zeros: [0, model.inChannels, model.inputSize, model.inputSize]) }
        let sampleShape = [model.inChannels, model.inputSize, model.inputSize]
        var x = try noise.normal(indices: indices, sampleShape: sampleShape, purpose: .initialLatent)
        let guided = settings.cfgScale != 1
        guard !guided || model.supportsGuidance else {
            throw DiffusionError.invalidArgument(
                "the model has no null class (class_dropout_prob = 0): classifier-free guidance needs --cfg-scale 1")
        }
        for s in 0..<numSteps {
            let t = numSteps - 1 - s
            let tb = [Int](repeating: t, count: n)
            let modelT = diffusion.modelTimestep(t)
            let output = try settings.batching.run(rows: n) { rows in
                let xr = rows.count == n ? x : x.slice(rows)
                let yr = Array(labels[rows])
                let m = rows.count
                guard guided else {
                    return try model.forward(xr, t: [Float](repeating: modelT, count: m), y: yr)
                }
                // DiT sample.py: z = cat([z, z]), y = cat([y, null]); the reference
                // chain also carries the second half, but forward_with_cfg reads
                // only the first, so the first half's result is the same without it.
                let full = try model.forwardWithCFG(
                    Tensor.concat([xr, xr]), t: [Float](repeating: modelT, count: 2 * m),
                    y: yr + [Int](repeating: model.numClasses, count: m),
                    scale: settings.cfgScale, guideAllChannels: settings.guideAllChannels)
                guard full.rank == 4, full.shape[0] == 2 * m else {
                    throw DiffusionError.shapeMismatch(what: "forward_with_cfg output", expected: [2 * m] + sampleShape,
                                                       found: full.shape)
                }
                return full.slice(0..<m)
            }
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
            onStep?(s)
        }
        return x
    }
}
