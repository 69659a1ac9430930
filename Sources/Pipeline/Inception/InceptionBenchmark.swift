import Foundation
import PipelineTensor
import PipelineWeights

/// Throughput of the FID Inception forward pass (random weights), for `dit-worker bench inception`.
public enum InceptionBenchmark {
    public struct Result: Codable {
        public var batch: Int, threads: Int, size: Int, iterations: Int
        public var secondsPerBatch: Double
        public var imagesPerSecond: Double
        /// Convolution + fc FLOPs per batch over the best time.
        public var gflops: Double
        /// A plain sgemm's GFLOP/s measured in the same run (2048×1152×1152): the machine's ceiling now.
        public var ceilingGflops: Double
        /// CPU seconds (all threads) the process spent per batch.
        public var cpuSecondsPerBatch: Double
    }

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    public static func run(batch: Int, threads: Int, size: Int = FIDInceptionV3.inputSize,
                           iterations: Int = 3, weights: String? = nil, options: InceptionOptions = .standard) throws -> Result {
        Threads.set(threads)
        let model = try weights.map { try FIDInceptionV3(path: $0, options: options) }
            ?? FIDInceptionV3(source: RandomTensorSource.inception(seed: RandomTensorSource.inceptionBenchmarkSeed), options: options)
        var rng = SplitMix64(seed: 7)
        let images = Tensor(uninitialized: [batch, 3, size, size])
        for i in 0..<images.count { images.data[i] = Float(rng.next() >> 40) / Float(1 << 24) }
        _ = try model.features(images)  // warm-up
        let ceiling = GEMMBenchmark.measure(m: 2048, n: 1152, k: 1152, seconds: 1)
        OpProfile.reset()
        var best = Double.infinity
        var flops = 0.0
        let cpu0 = cpuSeconds()
        for _ in 0..<max(iterations, 1) {
            PlanarConv.flops.withLock { $0 = 0 }
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.features(images)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            flops = PlanarConv.flops.current + 2 * Double(batch) * 2048 * 1008
        }
        let cpu = (cpuSeconds() - cpu0) / Double(max(iterations, 1))
        return Result(batch: batch, threads: threads, size: size, iterations: iterations,
                      secondsPerBatch: best, imagesPerSecond: Double(batch) / best,
                      gflops: flops / best / 1e9, ceilingGflops: ceiling, cpuSecondsPerBatch: cpu)
    }

    /// Largest difference between the fast convolutions and im2col + sgemm over a random batch
    /// (random weights unless `weights`), relative to the largest |value| of each output.
    public static func fastDeviation(batch: Int, size: Int = FIDInceptionV3.inputSize,
                                     weights: String? = nil) throws -> (pool3: Float, logits: Float, spatial: Float) {
        // The same weights in two models, one per algorithm.
        func model(_ fast: Bool) throws -> FIDInceptionV3 {
            let o = InceptionOptions(fastConvolutions: fast)
            return try weights.map { try FIDInceptionV3(path: $0, options: o) } ?? FIDInceptionV3(source: RandomTensorSource.inception(seed: RandomTensorSource.inceptionBenchmarkSeed), options: o)
        }
        var rng = SplitMix64(seed: 9)
        let images = Tensor(uninitialized: [batch, 3, size, size])
        for i in 0..<images.count { images.data[i] = Float(rng.next() >> 40) / Float(1 << 24) }
        let fast = try model(true).features(images)
        let exact = try model(false).features(images)
        func deviation(_ a: Tensor, _ b: Tensor) -> Float {
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
            return worst / max(b.maxAbs, .leastNormalMagnitude)
        }
        return (deviation(fast.pool3, exact.pool3), deviation(fast.logits, exact.logits),
                deviation(fast.spatial, exact.spatial))
    }
}
