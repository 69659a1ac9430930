import ArgumentParser
import Foundation
import Pipeline

/// `dit-worker sample`: single-process class-conditional sampling. Sample i's
/// latent depends only on (seed, i): any batch size gives the same bits.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample from a DiT (DDPM or DDIM, classifier-free guidance) into OUT/latents.npy, labels.npy (and PNGs with --vae).")

    @Option(help: "DiT weights (file or diffusers folder), or random:PRESET (e.g. random:DiT-S/2) for benchmarks.")
    var dit: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "A diffusers AutoencoderKL folder (or `identity` for a pixel-space DiT): decode the samples and write NNNNNN.png.") var vae: String?
    @Option(help: "Image size in pixels for a random:PRESET model (latent = size / 8).") var imageSize = 256
    @Option(help: "Number of samples.") var numSamples: Int
    @Option(help: "Seed of the noise and of the labels.") var seed: UInt64 = 0
    @Option(help: "Classifier-free guidance scale (1 = no guidance).") var cfgScale: Float = 1.5
    @Flag(help: "Guide all eps channels instead of the reference's first 3.") var guideAllChannels = false
    @Option(help: "ddpm or ddim.") var sampler: String = "ddpm"
    @Option(help: "Sampling steps (respacing K for DDPM, ddimK for DDIM).") var steps: Int = 250
    @Option(help: "Explicit respacing (overrides --steps' default): N, N1,N2,..., or ddimN.") var respacing: String?
    @Option(help: "DDIM eta.") var eta: Float = 0
    @Option(help: "uniform, balanced, or a file of labels (one integer per line, or .npy).") var labels = "uniform"
    @Option(help: "Output folder.") var out: String
    @Option(help: "Samples per sampler batch.") var batch = 16
    @Option(help: "per-sample (bit-identical whatever the batching and threads) or batched (one forward per batch).")
    var modelCalls = "per-sample"
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    func run() throws {
        if let threads { Threads.set(threads) }
        guard let kind = SamplerKind(rawValue: sampler) else {
            throw ValidationError("--sampler must be ddpm or ddim, got \(sampler)")
        }
        let batching: ModelBatching
        switch modelCalls {
        case "per-sample": batching = .deterministic
        case "batched": batching = .batched
        default: throw ValidationError("--model-calls must be per-sample or batched, got \(modelCalls)")
        }
        let model = try DiTModelSpec(parsing: dit).load(configFile: config, numHeads: numHeads, imageSize: imageSize)
        let run = SampleRun(
            numSamples: numSamples, seed: seed,
            settings: SamplerSettings(kind: kind, cfgScale: cfgScale, eta: eta, guideAllChannels: guideAllChannels,
                                       batching: batching),
            steps: steps, respacing: try respacing.map(Respacing.init(parsing:)),
            labels: try ClassLabelPolicy(parsing: labels), batchSize: batch, outputDirectory: out)
        var last: SampleProgress?
        let decoder = try vae.map { try AutoencoderSpec.load($0) }
        let result = try run.run(model: model, decoder: decoder) { p in
            last = p
            FileHandle.standardError.write(("\r" + p.line).data(using: .utf8)!)
        }
        FileHandle.standardError.write("\n".data(using: .utf8)!)
        if let p = last {
            print(String(format: "sampled %d latents %@ in %.1f s: %.3f images/s (%@, %d steps, cfg %.2f, batch %d, %@ calls, %d threads)",
                         numSamples, "\(result.latents.shape)", p.elapsed, Double(numSamples) / p.elapsed,
                         sampler, run.steps, cfgScale, batch, modelCalls, Threads.count))
        }
        print("wrote \(out)/latents.npy, \(out)/labels.npy" + (vae == nil ? "" : " and \(numSamples) PNGs"))
    }
}
