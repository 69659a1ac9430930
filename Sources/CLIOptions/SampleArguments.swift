import ArgumentParser
import Foundation
import PipelineVAE
import PipelineDiffusion
import PipelineJobs

/// The flags of `dit-worker sample` (single process), also taken by
/// `dit-coordinator run sample` and `submit sample` (the distributed job).
public struct SampleArguments: ParsableArguments {
    @Option(help: "DiT weights (file or diffusers folder), or random:PRESET (e.g. random:DiT-S/2) for benchmarks.")
    public var dit: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") public var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") public var numHeads: Int?
    @Option(help: "A diffusers AutoencoderKL folder (or `identity` for a pixel-space DiT): decode the samples and write NNNNNN.png; without it, latents.")
    public var vae: String?
    @Option(help: "Image size in pixels for a random:PRESET model (latent = size / 8).") public var imageSize = 256
    @Option(help: "Number of samples.") public var numSamples: Int
    @Option(help: "Seed of the noise and of the labels.") public var seed: UInt64 = 0
    @Option(help: "Classifier-free guidance scale (1 = no guidance).") public var cfgScale: Float = 1.5
    @Flag(help: "Guide all eps channels instead of the reference's first 3.") public var guideAllChannels = false
    @Option(help: "ddpm or ddim (ADM), or a diffusers scheduler: \(SchedulerPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    public var sampler: String = "ddpm"
    @Option(help: "A diffusers scheduler config JSON applied over the --sampler preset (diffusers samplers only).")
    public var schedulerConfig: String?
    @Option(help: "Classifier-free guidance only at model timesteps LO <= t <= HI (e.g. 0,700); one conditional call elsewhere.")
    public var cfgInterval: String?
    @Option(help: "Sampling steps (respacing K for DDPM, ddimK for DDIM, set_timesteps(K) for the diffusers samplers).") public var steps: Int = 250
    @Option(help: "Explicit respacing (overrides --steps' default): N, N1,N2,..., or ddimN.") public var respacing: String?
    @Option(help: "DDIM eta.") public var eta: Float = 0
    @Flag(help: "ddpm, ddim: clamp every predicted x0 to [-1, 1] (ADM's clip_denoised=True, its default for pixel-space models; DiT's sample.py: False, for latents).")
    public var clipDenoised = false
    @Option(help: "uniform, balanced, null (unconditional: the null class), or a file of labels (one integer per line, or .npy).") public var labels = "uniform"
    @Option(help: "Output folder (for a job: shared by coordinator and workers).") public var out: String
    @Option(help: "Samples per sampler batch.") public var batch = 16
    @Option(help: "per-sample (bit-identical whatever the batching and threads) or batched (one forward per batch).")
    public var modelCalls = "per-sample"

    public init() {}

    /// The sampler settings these flags name.
    public func settings() throws -> SamplerSettings {
        let choice: SamplerChoice
        do { choice = try SamplerChoice(name: sampler, schedulerConfigFile: schedulerConfig) } catch {
            throw ValidationError("--sampler: \(error)")
        }
        let batching: ModelBatching
        switch modelCalls {
        case "per-sample": batching = .deterministic
        case "batched": batching = .batched
        default: throw ValidationError("--model-calls must be per-sample or batched, got \(modelCalls)")
        }
        var settings = choice.settings(cfgScale: cfgScale, eta: eta, guideAllChannels: guideAllChannels, batching: batching,
                                       cfgInterval: try cfgInterval.map(GuidanceInterval.init(parsing:)))
        settings.clipDenoised = clipDenoised
        return settings
    }

    /// The distributed job's spec (paths made absolute).
    public func spec(samplesPerShard: Int) throws -> SampleSpec {
        let scheduler: String?
        if case let .diffusers(_, config) = try SamplerChoice(name: sampler, schedulerConfigFile: schedulerConfig) {
            scheduler = config.jsonText
        } else {
            scheduler = nil
        }
        return SampleSpec(
            outputDir: absolute(out), dit: dit.hasPrefix("random:") ? dit : absolute(dit), config: config.map(absolute),
            numHeads: numHeads, imageSize: imageSize,
            vae: vae.map { $0 == AutoencoderSpec.identityName ? $0 : absolute($0) }, numSamples: numSamples, seed: seed,
            cfgScale: cfgScale, guideAllChannels: guideAllChannels, sampler: sampler, steps: steps, respacing: respacing,
            eta: eta, labels: ["uniform", "balanced"].contains(labels) ? labels : absolute(labels), batch: batch,
            modelCalls: modelCalls, samplesPerShard: samplesPerShard, scheduler: scheduler, cfgInterval: cfgInterval,
            clipDenoised: clipDenoised ? true : nil)
    }
}
