import XCTest
@testable import Pipeline

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
        var rng = Pipeline.SplitMix64(seed: 99)
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
}
