import ArgumentParser
import Foundation
import PipelineTraining

/// `dit-worker bench train`: training steps per second on procedural shapes.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput (forward + backward + AdamW + EMA): images/s and GFLOP/s.")

    @Option(help: "Image side in pixels.") var imageSize = 32
    @Option var patchSize = 4
    @Option var hiddenSize = 96
    @Option var depth = 4
    @Option var heads = 4
    @Option var batch = 32
    @Option var threads = 2
    @Option(help: "Minimum seconds of timed steps.") var seconds = 10.0
    @Option(help: "Minimum number of timed steps (after one warm-up).") var steps = 5

    func run() throws {
        var o = TrainingOptions()
        o.imageSize = imageSize; o.patchSize = patchSize; o.hiddenSize = hiddenSize; o.depth = depth
        o.numHeads = heads; o.batch = batch; o.lr = 1e-3; o.gradClip = 1; o.emaDecay = 0.999
        o.steps = Int.max; o.checkpointEvery = Int.max; o.logEvery = Int.max
        print(try TrainingBenchmark.run(options: o, threads: threads, minSeconds: seconds, minSteps: steps).text)
    }
}
