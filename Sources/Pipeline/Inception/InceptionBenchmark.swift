import Foundation

/// Throughput of the FID Inception forward pass (random weights), for `dit-worker bench inception`.
public enum InceptionBenchmark {
    public struct Result: Codable {
        public var batch: Int, threads: Int, size: Int, iterations: Int
        public var secondsPerBatch: Double
        public var imagesPerSecond: Double
    }

    public static func run(batch: Int, threads: Int, size: Int = FIDInceptionV3.inputSize,
                           iterations: Int = 3, weights: String? = nil) throws -> Result {
        Threads.set(threads)
        let model = try weights.map { try FIDInceptionV3(path: $0) } ?? FIDInceptionV3(weights: RandomLayerWeights())
        var rng = SplitMix64(seed: 7)
        let images = Tensor(uninitialized: [batch, 3, size, size])
        for i in 0..<images.count { images.data[i] = Float(rng.next() >> 40) / Float(1 << 24) }
        _ = try model.features(images)  // warm-up
        var best = Double.infinity
        for _ in 0..<max(iterations, 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try model.features(images)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Result(batch: batch, threads: threads, size: size, iterations: iterations,
                      secondsPerBatch: best, imagesPerSecond: Double(batch) / best)
    }
}
