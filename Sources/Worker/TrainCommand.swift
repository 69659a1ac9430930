import ArgumentParser
import CLIOptions
import Foundation
import PipelineTensor
import PipelineTraining

extension TrainingOptions.LRSchedule: ExpressibleByArgument {}

/// `dit-worker train`: trains a DiT on encode-job shards (latents re-drawn every epoch) or
/// on an ImageFolder of S × S images (pixel space).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a DiT (ADM loss, AdamW, EMA) on encode-job shards or an image folder; checkpoints under --out.")

    @Option(help: "Encode-job output folder (manifest.json + shards/), or an ImageFolder root (root/<class>/<image>) of --image-size pixels.") var data: String
    @Option(help: "A preset (DiT-S/4, ...) or custom (the sizes below).") var model: String = "custom"
    @Option(help: "Image side in pixels (image folders; shards give their latent size).") var imageSize: Int = 32
    @Option(help: "custom: patch size.") var patchSize: Int = 4
    @Option(help: "custom: hidden size.") var hiddenSize: Int = 128
    @Option(help: "custom: depth.") var depth: Int = 4
    @Option(help: "custom: attention heads.") var heads: Int = 4
    @Option(help: "Label classes of the model (default: the folder's).") var numClasses: Int?
    @Flag(inversion: .prefixedNo, help: "Learned-range variances (loss mse + vb, 2C output channels); --no-learn-sigma: fixed variances (FIXED_LARGE), loss mse only, as create_diffusion(learn_sigma=False).")
    var learnSigma = true
    @Flag(help: "The model predicts x0 instead of the noise, as create_diffusion(predict_xstart=True); MSE loss against x0 (needs --no-learn-sigma). Recorded in config.json as predict_xstart.")
    var predictXstart = false
    @Option(help: "Label dropout probability (class_dropout_prob).") var classDropoutProb: Double = 0.1
    @Option(help: "Total optimisation steps.") var steps: Int
    @Option(help: "Images per step.") var batch: Int = 32
    @Option(help: "AdamW learning rate.") var lr: Double = 1e-4
    @Option(help: "Linear learning-rate warm-up steps.") var warmupSteps: Int = 0
    @Option(help: "Learning rate after the warm-up: constant or cosine (decays to --min-lr at --steps).") var lrSchedule: TrainingOptions.LRSchedule = .constant
    @Option(help: "cosine: the final learning rate.") var minLr: Double = 0
    @Option(help: "AdamW weight decay.") var weightDecay: Double = 0
    @Option(help: "EMA decay.") var emaDecay: Double = 0.9999
    @Option(help: "Clip the global gradient norm to this value.") var gradClip: Double?
    @Option(help: "Seed of batches, timesteps, noise, dropout and initial weights.") var seed: UInt64 = 0
    @Option(help: "Checkpoint every K steps.") var checkpointEvery: Int = 500
    @Option(help: "Log every K steps.") var logEvery: Int = 50
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Continue from the newest checkpoint in --out.") var resume = false
    @Option(help: "Start a fresh run from these weights (e.g. an earlier run's ema.safetensors, same configuration) instead of the random initialisation.")
    var initWeights: String?
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        if let threads { Threads.set(threads) }
        let images: TrainingData
        var o = TrainingOptions()
        if TrainingLatents.isShardFolder(data) {
            images = try TrainingLatents(shards: data, seed: seed)
            o.inChannels = images.sampleShape[0]; o.imageSize = images.sampleShape[1]
        } else {
            images = try TrainingImages(imageFolder: data, size: imageSize)
            o.imageSize = imageSize
        }
        o.model = model; o.patchSize = patchSize; o.hiddenSize = hiddenSize
        o.depth = depth; o.numHeads = heads; o.numClasses = numClasses ?? images.numClasses
        o.learnSigma = learnSigma; o.predictXstart = predictXstart
        o.classDropoutProb = classDropoutProb; o.data = data; o.steps = steps; o.batch = batch; o.lr = lr
        o.warmupSteps = warmupSteps; o.lrSchedule = lrSchedule; o.minLR = minLr
        o.weightDecay = weightDecay; o.emaDecay = emaDecay; o.gradClip = gradClip; o.seed = seed
        o.checkpointEvery = checkpointEvery; o.logEvery = logEvery; o.initWeights = initWeights
        let trainer = try Trainer(options: o, data: images, out: out, resume: resume)
        print("training \(images.count) \(images is TrainingLatents ? "latents" : "images"), \(images.numClasses) classes, from step \(trainer.step) to \(steps)")
        fflush(stdout)
        let bar = ProgressReporter("training", total: steps, unit: "steps", startingAt: trainer.step)
        try trainer.run { line in
            print(line.text)
            fflush(stdout)
            bar.update(line.step)
        }
        bar.finish()
        print("done: \(out)/ema.safetensors (EMA weights), \(out)/config.json")
    }
}
