import Foundation
import PipelineTensor

/// The cost of a sampler per image: model evaluations (a guided step counts the conditional and
/// the null-label evaluation: 2), seconds and images per hour, measured by sampling `images`
/// images through `SampleEngine` (per-sample model calls, `Threads.count` at a time).
public struct SamplerBenchmark {
    public var modelCallsPerImage: Int
    public var secondsPerImage: Double
    public var totalSteps: Int
    public var timedSteps: Int
    public var extrapolated: Bool { timedSteps < totalSteps }

    private struct Stop: Error {}

    /// The model, refusing calls after `limit` (so a long chain can be timed for a few steps).
    private final class Limited: NoisePredictionModel {
        let base: NoisePredictionModel
        let limit: Int
        private var calls = 0
        private let lock = NSLock()
        init(_ base: NoisePredictionModel, limit: Int) { self.base = base; self.limit = limit }
        var inChannels: Int { base.inChannels }
        var inputSize: Int { base.inputSize }
        var numClasses: Int { base.numClasses }
        var learnsSigma: Bool { base.learnsSigma }
        var supportsGuidance: Bool { base.supportsGuidance }
        var predictsXstart: Bool { base.predictsXstart }
        private func admit() throws {
            lock.lock()
            defer { lock.unlock() }
            calls += 1
            if calls > limit { throw Stop() }
        }
        func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
            try admit()
            return try base.forward(x, t: t, y: y)
        }
        func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor {
            try admit()
            return try base.forwardWithCFG(x, t: t, y: y, scale: scale, guideAllChannels: guideAllChannels)
        }
    }

    /// `timedSteps` > 0 stops after that many steps and scales the time by the model
    /// evaluations of all steps over those of the timed ones.
    public static func run(model: NoisePredictionModel, settings: SamplerSettings, steps: Int, images: Int,
                           timedSteps: Int = 0, seed: UInt64 = 0) throws -> SamplerBenchmark {
        guard images > 0 else { throw DiffusionError.invalidArgument("--images must be positive, got \(images)") }
        let probe = try SampleEngine.standard(model: model, settings: settings, steps: steps, seed: seed,
                                              labels: .uniform, total: images)
        let ts = probe.sampler.modelTimesteps
        let evals = ts.map { settings.guides(at: $0) ? 2 : 1 }
        let total = evals.reduce(0, +)
        let limit = timedSteps > 0 ? min(timedSteps, ts.count) : ts.count
        // One model call per image per step (a guided pair is one call on a doubled batch).
        let engine = try SampleEngine.standard(model: Limited(model, limit: limit * images), settings: settings, steps: steps,
                                               seed: seed, labels: .uniform, total: images)
        let start = Date()
        do {
            try engine.generate(indices: Array(0..<images), batchSize: images) { _, _, _ in }
        } catch is Stop {}
        let elapsed = Date().timeIntervalSince(start)
        let timedEvals = evals.prefix(limit).reduce(0, +)
        return SamplerBenchmark(modelCallsPerImage: total, secondsPerImage: elapsed * Double(total) / Double(max(timedEvals, 1)) / Double(images),
                                totalSteps: ts.count, timedSteps: limit)
    }

    public func json(name: String) -> String {
        String(format: "{\"name\": \"%@\", \"model_calls_per_image\": %d, \"seconds_per_image\": %.4f, \"images_per_hour\": %.1f, \"timed_steps\": %d, \"total_steps\": %d}",
               name, modelCallsPerImage, secondsPerImage, 3600 / secondsPerImage, timedSteps, totalSteps)
    }
}
