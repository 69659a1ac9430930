import Foundation
import PipelineTensor

/// Progress of a sampling run, reported after every sampler step.
public struct SampleProgress {
    public var stepsDone: Int
    public var stepsTotal: Int
    public var samplesDone: Int
    public var samplesTotal: Int
    public var elapsed: Double

    /// Finished images per second, counting partial batches by their steps.
    public var imagesPerSecond: Double {
        elapsed > 0 ? Double(samplesTotal) * Double(stepsDone) / Double(max(stepsTotal, 1)) / elapsed : 0
    }
    public var eta: Double {
        let rate = Double(stepsDone) / max(elapsed, 1e-9)
        return rate > 0 ? Double(stepsTotal - stepsDone) / rate : .infinity
    }

    /// "steps 120/500 · 3 img/s · ETA 0:42"
    public var line: String {
        let etaText: String
        if eta.isFinite {
            let s = Int(eta.rounded())
            etaText = s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String(format: "%d:%02d", s / 60, s % 60)
        } else { etaText = "?" }
        return String(format: "steps %d/%d · samples %d/%d · %.3f img/s · ETA %@",
                      stepsDone, stepsTotal, samplesDone, samplesTotal, imagesPerSecond, etaText)
    }
}

/// Produces samples for any list of global indices, deterministically per
/// index: the library entry point of `dit-worker sample` and of the distributed
/// sample job (one call per shard). The same (seed, index) gives the same latent
/// bits whatever the batch size, the shard or a retry.
public final class SampleEngine {
    public let model: NoisePredictionModel
    public let sampler: LatentSampler
    public let noise: NoiseSource
    public let labeler: ClassLabeler

    public init(model: NoisePredictionModel, sampler: LatentSampler, noise: NoiseSource, labeler: ClassLabeler) throws {
        try sampler.check(model: model)
        guard labeler.numClasses == model.numClasses else {
            throw DiffusionError.invalidArgument("labels for \(labeler.numClasses) classes, model has \(model.numClasses)")
        }
        self.model = model
        self.sampler = sampler
        self.noise = noise
        self.labeler = labeler
    }

    /// The usual set-up: DiT's diffusion (linear schedule, 1000 steps) respaced
    /// for the sampler, or the diffusers scheduler of `settings.scheduler` at `steps`;
    /// Philox noise from `seed`, `policy` labels for `total` samples.
    public static func standard(model: NoisePredictionModel, settings: SamplerSettings, steps: Int,
                                respacing: Respacing? = nil, seed: UInt64, labels policy: ClassLabelPolicy,
                                total: Int, schedule: NoiseSchedule = .linear,
                                diffusionSteps: Int = 1000) throws -> SampleEngine {
        guard steps > 0 else { throw DiffusionError.invalidArgument("sampling steps must be positive, got \(steps)") }
        let sampler: LatentSampler
        if let config = settings.scheduler {
            guard respacing == nil else {
                throw DiffusionError.invalidArgument("--respacing is for the ddpm and ddim samplers; \(config.scheduler.rawValue) takes --steps")
            }
            sampler = try SchedulerSampler(scheduler: try config.scheduler(steps: steps), settings: settings)
        } else {
            let diffusion = try GaussianDiffusion.create(
                respacing: respacing ?? settings.kind.defaultRespacing(steps: steps), schedule: schedule,
                predictXstart: model.predictsXstart, learnSigma: model.learnsSigma, diffusionSteps: diffusionSteps)
            sampler = try DiffusionSampler(diffusion: diffusion, settings: settings)
        }
        let noise = PhiloxNoise(seed: seed)
        return try SampleEngine(
            model: model, sampler: sampler, noise: noise,
            labeler: try ClassLabeler(policy: policy, numClasses: model.numClasses, total: total, noise: noise,
                                      nullClass: model.supportsGuidance))
    }

    /// Samples `indices` in batches of `batchSize`; `onBatch` receives each
    /// batch's indices, labels and latents `[n, C, H, W]` as it completes. `checkpoint` runs
    /// after every sampler step (between the model calls of two steps): an error it throws
    /// (a worker told to stop) ends the run there, also in the middle of a long batch.
    public func generate(indices: [Int], batchSize: Int, progress: ((SampleProgress) -> Void)? = nil,
                         checkpoint: (() throws -> Void)? = nil,
                         onBatch: ([Int], [Int], Tensor) throws -> Void) throws {
        guard batchSize > 0 else { throw DiffusionError.invalidArgument("batch size must be positive, got \(batchSize)") }
        let start = Date()
        let batches = stride(from: 0, to: indices.count, by: batchSize).map {
            Array(indices[$0..<min($0 + batchSize, indices.count)])
        }
        let stepsTotal = batches.count * sampler.numSteps
        var stepsDone = 0, samplesDone = 0
        for batch in batches {
            let labels = try labeler.labels(for: batch)
            let latents = try sampler.sample(model: model, indices: batch, labels: labels, noise: noise) { _ in
                stepsDone += 1
                progress?(SampleProgress(stepsDone: stepsDone, stepsTotal: stepsTotal, samplesDone: samplesDone,
                                         samplesTotal: indices.count, elapsed: Date().timeIntervalSince(start)))
                try checkpoint?()
            }
            samplesDone += batch.count
            progress?(SampleProgress(stepsDone: stepsDone, stepsTotal: stepsTotal, samplesDone: samplesDone,
                                     samplesTotal: indices.count, elapsed: Date().timeIntervalSince(start)))
            try onBatch(batch, labels, latents)
        }
    }

    /// All of `indices` at once: latents `[N, C, H, W]` in the order of `indices`, and their labels.
    public func generate(indices: [Int], batchSize: Int,
                         progress: ((SampleProgress) -> Void)? = nil) throws -> (latents: Tensor, labels: [Int]) {
        var parts: [Tensor] = []
        var labels: [Int] = []
        try generate(indices: indices, batchSize: batchSize, progress: progress) { _, y, x in
            parts.append(x)
            labels += y
        }
        let c = model.inChannels, s = model.inputSize
        return (parts.isEmpty ? Tensor(zeros: [0, c, s, s]) : Tensor.concat(parts), labels)
    }
}
