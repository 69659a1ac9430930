import Foundation
import PipelineTensor
import PipelineDiT

/// Training throughput: full optimisation steps (forward, ADM loss, backward, clipping, AdamW,
/// EMA) on in-memory procedural shapes, timed after one warm-up step. GFLOP/s counts
/// forward + backward as 3 × the forward GEMM FLOPs (`DiT.flops`), the usual convention.
public enum TrainingBenchmark {
    public struct Result {
        public var config: DiTConfig
        public var batch: Int, threads: Int, steps: Int
        public var seconds: Double
        public var flopsPerImage: Double
        public var imagesPerSecond: Double { Double(steps * batch) / seconds }
        public var gflops: Double { imagesPerSecond * flopsPerImage / 1e9 }
        public var text: String {
            String(format: "train %dx%d px, patch %d, hidden %d, depth %d, heads %d, batch %d, %d threads: %d steps in %.2f s, %.1f images/s, %.2f GFLOP/s (forward + backward = 3 x %.3f GFLOP forward per image)",
                   config.inputSize, config.inputSize, config.patchSize, config.hiddenSize, config.depth, config.numHeads,
                   batch, threads, steps, seconds, imagesPerSecond, gflops, flopsPerImage / 3e9)
        }
    }

    public static func run(options: TrainingOptions, threads: Int, minSeconds: Double, minSteps: Int) throws -> Result {
        Threads.set(threads)
        let config = try options.modelConfig()
        guard config.inChannels == 3 else { throw DiTConfigError.invalid(file: "bench train", reason: "pixel-space models only (3 channels)") }
        let data = TrainingImages(shapes: ShapesDataset(seed: 0, size: config.inputSize), count: max(4 * options.batch, 64))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dit-bench-train-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trainer = try Trainer(options: options, data: data, out: dir, resume: false)
        try trainer.trainStep()  // warm-up: buffers, BLAS threads
        var steps = 0
        let start = Date()
        while steps < minSteps || Date().timeIntervalSince(start) < minSeconds {
            try trainer.trainStep()
            steps += 1
        }
        let seconds = Date().timeIntervalSince(start)
        return Result(config: config, batch: options.batch, threads: threads, steps: steps, seconds: seconds,
                      flopsPerImage: 3 * (try trainer.model.inferenceModel().flops(batch: 1)))
    }
}
