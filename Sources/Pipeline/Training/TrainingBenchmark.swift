import Foundation
import PipelineTensor
import PipelineDiT

/// Training throughput: full optimisation steps (forward, ADM loss, backward, clipping, AdamW,
/// EMA) on in-memory procedural shapes, timed after one warm-up step. GFLOP/s counts
/// forward + backward as 3 × the forward GEMM FLOPs (`DiT.flops`), the usual convention.
/// The machine's sgemm ceiling (`ceilingShape`, the shape `bench gemm` uses by default) is
/// measured in slices between the steps, so that both figures see the same load.
public enum TrainingBenchmark {
    public struct Result {
        public var config: DiTConfig
        public var batch: Int, threads: Int, steps: Int
        public var seconds: Double
        public var flopsPerImage: Double
        public var ceilingGflops: Double
        public var imagesPerSecond: Double { Double(steps * batch) / seconds }
        public var gflops: Double { imagesPerSecond * flopsPerImage / 1e9 }
        public var fractionOfCeiling: Double { gflops / ceilingGflops }
        public var text: String {
            String(format: "train %dx%d px, patch %d, hidden %d, depth %d, heads %d, batch %d, %d threads: %d steps in %.2f s, %.1f images/s, %.2f GFLOP/s (forward + backward = 3 x %.3f GFLOP forward per image); sgemm ceiling %.1f GFLOP/s (%dx%dx%d, same run): %.1f%%",
                   config.inputSize, config.inputSize, config.patchSize, config.hiddenSize, config.depth, config.numHeads,
                   batch, threads, steps, seconds, imagesPerSecond, gflops, flopsPerImage / 3e9,
                   ceilingGflops, ceilingShape.m, ceilingShape.n, ceilingShape.k, 100 * fractionOfCeiling)
        }
    }

    /// The ceiling's GEMM: `dit-worker bench gemm`'s default shape.
    public static let ceilingShape = (m: 2048, n: 1152, k: 1152)

    public static func run(options: TrainingOptions, threads: Int, minSeconds: Double, minSteps: Int) throws -> Result {
        Threads.set(threads)
        let config = try options.modelConfig()
        guard config.inChannels == 3 else { throw DiTConfigError.invalid(file: "bench train", reason: "pixel-space models only (3 channels)") }
        let data = TrainingImages(shapes: ShapesDataset(seed: 0, size: config.inputSize), count: max(4 * options.batch, 64))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dit-bench-train-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trainer = try Trainer(options: options, data: data, out: dir, resume: false)
        try trainer.trainStep()  // warm-up: buffers, BLAS threads
        let g = ceilingShape
        _ = GEMMBenchmark.measure(m: g.m, n: g.n, k: g.k, seconds: 0.2)
        var steps = 0, seconds = 0.0, ceilingFlop = 0.0, ceilingSeconds = 0.0
        while steps < minSteps || seconds < minSeconds {
            let start = DispatchTime.now().uptimeNanoseconds
            try trainer.trainStep()
            let took = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            seconds += took
            steps += 1
            let slice = max(0.1, took / 4)
            ceilingFlop += GEMMBenchmark.measure(m: g.m, n: g.n, k: g.k, seconds: slice) * 1e9 * slice
            ceilingSeconds += slice
        }
        return Result(config: config, batch: options.batch, threads: threads, steps: steps, seconds: seconds,
                      flopsPerImage: 3 * (try trainer.model.inferenceModel().flops(batch: 1)),
                      ceilingGflops: ceilingFlop / ceilingSeconds / 1e9)
    }
}
