import ArgumentParser
import CLIOptions
import Foundation
import PipelineTensor
import PipelineDiT
import PipelineDiffusion

/// `dit-worker bench sample`: a sampler's cost per image with random weights.
struct BenchSample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Model calls per image, seconds per image and images per hour of a sampler (random weights).")

    @Option(help: "DiT-S/B/L/XL with /2, /4 or /8, e.g. DiT-XL/2.") var model = "DiT-S/2"
    @Option(help: "Image size in pixels (latent = size / 8).") var imageSize = 256
    @Option(help: "Sampler: \(SamplerChoice.names.joined(separator: ", ")).") var sampler = "dpmpp2m"
    @Option(help: "A diffusers scheduler config JSON over the sampler's preset.") var schedulerConfig: String?
    @Option(help: "Sampling steps.") var steps = 20
    @Option(help: "Classifier-free guidance scale (1 = no guidance).") var cfgScale: Float = 1.5
    @Option(help: "Guidance only at model timesteps LO <= t <= HI (e.g. 0,700).") var cfgInterval: String?
    @Option(help: "Images sampled (per-sample model calls, --threads at a time).") var images = 2
    @Option(help: "Time only the first K steps and extrapolate to all of them (0 = run every step).") var timedSteps = 0
    @Option var threads = 2
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard let preset = DiTPreset(parsing: model) else {
            throw ValidationError("unknown model '\(model)'; one of \(DiTPreset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        Threads.set(threads)
        let choice = try SamplerChoice(name: sampler, schedulerConfigFile: schedulerConfig)
        let settings = choice.settings(cfgScale: cfgScale, cfgInterval: try cfgInterval.map(GuidanceInterval.init(parsing:)))
        let dit = try DiTModelSpec.random(preset).load(configFile: nil, numHeads: nil, imageSize: imageSize)
        let r = try SamplerBenchmark.run(model: dit, settings: settings, steps: steps, images: images, timedSteps: timedSteps)
        let name = "\(model) \(imageSize) px, \(sampler) \(steps) steps, cfg \(cfgScale)" + (cfgInterval.map { " in [\($0)]" } ?? "")
        if json {
            print(r.json(name: name))
        } else {
            print(String(format: "%@: %d model calls per image, %.2f s per image, %.0f images per hour (%d images, %@%d threads)",
                         name, r.modelCallsPerImage, r.secondsPerImage, 3600 / r.secondsPerImage, images,
                         r.extrapolated ? "\(r.timedSteps) of \(r.totalSteps) steps timed and extrapolated, " : "", threads))
        }
    }
}
