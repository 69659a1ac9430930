import ArgumentParser
import CLIOptions
import Foundation
import PipelineTensor
import PipelineVAE
import PipelineDiffusion
import PipelineJobs

/// `dit-worker sample`: single-process class-conditional sampling. Sample i's
/// latent depends only on (seed, i): any batch size gives the same bits.
struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample from a DiT (DDPM, DDIM or a diffusers scheduler, classifier-free guidance) into OUT/latents.npy, labels.npy (and PNGs with --vae).")

    @OptionGroup var sample: SampleArguments
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        if let threads { Threads.set(threads) }
        let s = sample
        let settings = try s.settings()
        let model = try DiTModelSpec(parsing: s.dit).load(configFile: s.config, numHeads: s.numHeads, imageSize: s.imageSize)
        let calls = try SampleEngine.standard(model: model, settings: settings, steps: s.steps,
                                              respacing: try s.respacing.map(Respacing.init(parsing:)), seed: s.seed,
                                              labels: .uniform, total: 1).sampler.modelEvaluationsPerSample
        let run = SampleRun(
            numSamples: s.numSamples, seed: s.seed, settings: settings,
            steps: s.steps, respacing: try s.respacing.map(Respacing.init(parsing:)),
            labels: try ClassLabelPolicy(parsing: s.labels), batchSize: s.batch, outputDirectory: s.out)
        var last: SampleProgress?
        let decoder = try s.vae.map { try AutoencoderSpec.load($0) }
        let bar = ProgressReporter("sampling", total: s.numSamples, unit: "images")
        let result = try run.run(model: model, decoder: decoder) { p in
            last = p
            bar.total = p.samplesTotal
            bar.update(p.samplesDone, detail: "step \(p.stepsDone)/\(p.stepsTotal)")
        }
        bar.finish()
        if let p = last {
            print(String(format: "sampled %d latents %@ in %.1f s: %.3f images/s (%@, %d steps, cfg %.2f%@, batch %d, %@ calls, %d threads)",
                         s.numSamples, "\(result.latents.shape)", p.elapsed, Double(s.numSamples) / p.elapsed,
                         s.sampler, run.steps, s.cfgScale, s.cfgInterval.map { " in [\($0)]" } ?? "", s.batch, s.modelCalls,
                         Threads.count))
            print(String(format: "model calls per image: %d (a guided step counts 2); seconds per image: %.4f",
                         calls, p.elapsed / Double(s.numSamples)))
        }
        print("wrote \(s.out)/latents.npy, \(s.out)/labels.npy" + (s.vae == nil ? "" : " and \(s.numSamples) PNGs"))
    }
}
