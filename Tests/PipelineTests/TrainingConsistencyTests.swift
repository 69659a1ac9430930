import XCTest
@testable import PipelineTensor
@testable import PipelineDiT
@testable import PipelineTraining

/// The trainer's forward and the inference DiT agree on the same weights, for configurations
/// beyond the train/tiny fixture's (3-channel pixels, patch 4, head width 24 or 32).
final class TrainingConsistencyTests: XCTestCase {
    private func check(_ c: DiTConfig, seed: UInt64) throws {
        let model = try TrainableDiT(initializing: c, seed: seed)
        // The reference init zeroes adaLN and the final layer (output 0): perturb every tensor.
        var rng = PipelineTensor.SplitMix64(seed: seed &+ 1)
        for p in model.parameters where p.name != "pos_embed" {
            for i in 0..<p.value.count { p.value.data[i] += 0.05 * TrainingRandom.gaussian(&rng) }
        }
        let n = 3
        let x = Tensor(uninitialized: [n, c.inChannels, c.inputSize, c.inputSize])
        for i in 0..<x.count { x.data[i] = TrainingRandom.gaussian(&rng) }
        let t: [Float] = [3, 500, 999], y = [0, 1, c.numClasses]
        let train = try model.trainingForward(x, t: t, y: y).out
        let infer = try model.inferenceModel().forward(x, t: t, y: y)
        XCTAssertEqual(train.shape, infer.shape)
        var worst: Float = 0
        for i in 0..<train.count { worst = max(worst, abs(train.data[i] - infer.data[i])) }
        XCTAssertLessThanOrEqual(worst, 1e-4 * max(1, infer.maxAbs), "\(c.hiddenSize)/\(c.numHeads) heads, patch \(c.patchSize): max diff \(worst)")
    }

    func testTrainerForwardEqualsInference() throws {
        for (hidden, heads) in [(96, 4), (128, 4), (64, 4)] {
            let c = DiTConfig(inputSize: 32, patchSize: 4, inChannels: 3, hiddenSize: hidden, depth: 2, numHeads: heads,
                              mlpRatio: 4, numClasses: 4, hasNullClass: true, learnSigma: true)
            try check(c, seed: UInt64(hidden))
        }
    }
}
