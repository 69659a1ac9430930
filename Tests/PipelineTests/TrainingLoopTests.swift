import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT
@testable import PipelineTraining

/// The training loop on the procedural shapes set.
final class TrainingLoopTests: XCTestCase {
    private func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.imageSize = 16; o.patchSize = 4; o.hiddenSize = 32; o.depth = 2; o.numHeads = 2; o.numClasses = 4
        o.steps = steps; o.batch = 16; o.lr = 1e-3; o.emaDecay = 0.99; o.gradClip = 1
        o.checkpointEvery = 1000; o.logEvery = 1000; o.seed = 3
        return o
    }

    private func tempDir() -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("train-\(UUID())").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// The batch-mean loss on a fixed evaluation batch (fixed images, timesteps spread over the
    /// chain, fixed noise, true labels).
    private func evalLoss(_ model: TrainableDiT, data: TrainingImages) throws -> Float {
        let n = 64
        let x0 = data.batch((0..<n).map { $0 % data.count })
        let t = (0..<n).map { ($0 * 997 + 13) % 1000 }
        var rng = PipelineTensor.SplitMix64(seed: 99)
        let noise = Tensor(uninitialized: x0.shape)
        for i in 0..<noise.count { noise.data[i] = TrainingRandom.gaussian(&rng) }
        let y = (0..<n).map { data.labels[$0 % data.count] }
        return try model.lossAndGradients(x0: x0, t: t, noise: noise, y: y, diffusion: .linear()).loss
    }

    func testLossFallsOnShapes() throws {
        let data = TrainingImages(shapes: ShapesDataset(seed: 1, size: 16), count: 256)
        let trainer = try Trainer(options: options(steps: 300), data: data, out: tempDir(), resume: false)
        let before = try evalLoss(trainer.model, data: data)
        try trainer.run { _ in }
        let after = try evalLoss(trainer.model, data: data)
        print("shapes 16px, 300 steps: eval loss \(before) -> \(after) (factor \(before / after))")
        XCTAssertLessThan(after * 2, before, "the loss should fall at least 2x (measured 2.31x): \(before) -> \(after)")
    }

    func testResumeContinuesIdentically() throws {
        let data = TrainingImages(shapes: ShapesDataset(seed: 2, size: 16), count: 40)
        var o = options(steps: 6)
        o.checkpointEvery = 3
        let straight = try Trainer(options: o, data: data, out: tempDir(), resume: false)
        try straight.run { _ in }
        let dir = tempDir()
        o.steps = 3
        try Trainer(options: o, data: data, out: dir, resume: false).run { _ in }
        o.steps = 6
        let resumed = try Trainer(options: o, data: data, out: dir, resume: true)
        XCTAssertEqual(resumed.step, 3)
        try resumed.run { _ in }
        for (a, b) in zip(straight.model.parameters + straight.ema.parameters, resumed.model.parameters + resumed.ema.parameters) {
            XCTAssertEqual(a.value.values, b.value.values, a.name)
        }
        // The EMA weights load as a DiT through config.json.
        let loaded = try DiT.load(path: dir + "/ema.safetensors")
        XCTAssertEqual(loaded.config.hiddenSize, 32)
        XCTAssertEqual(loaded.config.inChannels, 3)
    }

    func testLearningRateWarmupAndCosine() throws {
        var o = options(steps: 110)
        o.lr = 1e-3; o.warmupSteps = 10; o.lrSchedule = .cosine; o.minLR = 1e-5
        XCTAssertEqual(o.learningRate(atStep: 0), 1e-4, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 4), 5e-4, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 9), 1e-3, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 10), 1e-3, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 60), (1e-3 + 1e-5) / 2, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 110), 1e-5, accuracy: 1e-15)
        XCTAssertEqual(o.learningRate(atStep: 500), 1e-5, accuracy: 1e-15)
        o.lrSchedule = .constant
        XCTAssertEqual(o.learningRate(atStep: 100), 1e-3)
        o.minLR = 2e-3
        XCTAssertThrowsError(try o.modelConfig(), "min lr above lr")

        // The trainer steps with the scheduled rate.
        var c = options(steps: 3)
        c.lr = 1e-3; c.warmupSteps = 4
        let trainer = try Trainer(options: c, data: TrainingImages(shapes: ShapesDataset(seed: 4, size: 16), count: 16),
                                  out: tempDir(), resume: false)
        try trainer.trainStep()
        XCTAssertEqual(trainer.optimizer.lr, 2.5e-4, accuracy: 1e-12)
        try trainer.trainStep()
        XCTAssertEqual(trainer.optimizer.lr, 5e-4, accuracy: 1e-12)

        // An args.json written before the schedule options existed still decodes (constant lr).
        guard var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(options(steps: 7))) as? [String: Any] else {
            return XCTFail("options encode as a JSON object")
        }
        for key in ["warmupSteps", "lrSchedule", "minLR"] { XCTAssertNotNil(json.removeValue(forKey: key), key) }
        let old = try JSONDecoder().decode(TrainingOptions.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(old, options(steps: 7))
    }

    func testStepZeroCheckpointHoldsTheInitialWeights() throws {
        let dir = tempDir()
        let o = options(steps: 0)
        let data = TrainingImages(shapes: ShapesDataset(seed: 4, size: 16), count: 8)
        try Trainer(options: o, data: data, out: dir, resume: false).run { _ in XCTFail("no steps, no log") }
        let f = try SafeTensorsFile(path: dir + "/checkpoints/0000000.safetensors")
        XCTAssertEqual(f.metadata["step"], "0")
        let fresh = try TrainableDiT(initializing: try o.modelConfig(), seed: o.seed)
        for p in fresh.parameters {
            XCTAssertEqual(try f.tensor("model." + p.name).values, p.value.values, p.name)
            XCTAssertEqual(try f.tensor("ema." + p.name).values, p.value.values, p.name)
        }
        XCTAssertEqual(try DiT.load(path: dir + "/ema.safetensors").config.hiddenSize, 32)
    }
}
