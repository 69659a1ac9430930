import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT
@testable import PipelineTraining

/// Training a model without learned sigma (`create_diffusion(learn_sigma=False)`: FIXED_LARGE
/// variances, the loss is the MSE alone): the loss against the learned-sigma loss's MSE term,
/// whole-model gradients against finite differences, the reference fixture when present, and
/// the training loop.
final class TrainingMSETests: XCTestCase {
    /// The MSE-only loss and its gradient equal the learned-sigma loss's mse term and its
    /// eps-channel gradient (which the vb term never reaches: the reference's stop-gradient).
    func testMSEOnlyEqualsTheLearnedLossMSETerm() throws {
        let loss = ADMTrainingLoss.linear(steps: 1000)
        var rng = SplitMix64(seed: 41)
        let x0 = rng.uniform([3, 3, 4, 4], bound: 1), noise = rng.uniform([3, 3, 4, 4], bound: 2)
        let learned = rng.uniform([3, 6, 4, 4], bound: 1)
        let t = [0, 17, 999]
        let xT = loss.qSample(x0, t: t, noise: noise)
        let eps = Tensor(uninitialized: x0.shape)
        let per = 3 * 16
        for i in 0..<3 { (eps.data + i * per).update(from: learned.data + i * 2 * per, count: per) }
        let a = try loss.lossAndGradient(output: learned, x0: x0, xT: xT, t: t, noise: noise)
        let b = try loss.mseLossAndGradient(output: eps, t: t, target: noise)
        for i in 0..<3 {
            XCTAssertEqual(a.mse[i], b.mse[i], accuracy: 1e-6 * max(1, a.mse[i]), "mse of item \(i)")
            for j in 0..<per {
                let g = a.dOutput.data[i * 2 * per + j]  // float32 rounding apart (the learned path works in float64)
                XCTAssertEqual(g, b.dOutput.data[i * per + j], accuracy: 1e-6 * abs(g), "d eps[\(i), \(j)]")
            }
        }
        // Shape errors name what is wrong.
        XCTAssertThrowsError(try loss.mseLossAndGradient(output: learned, t: t, target: noise)) { e in
            XCTAssertTrue("\(e)".contains("learn_sigma=False"), "\(e)")
        }
    }

    /// Every parameter kind of a fixed-variance DiT against central differences of the
    /// batch-mean MSE (evaluated in Double from the model output).
    func testWholeModelGradientAgainstFiniteDifferences() throws {
        for (patch, hidden, heads) in [(2, 8, 2), (4, 12, 3)] {
            let cfg = DiTConfig(inputSize: 8, patchSize: patch, inChannels: 3, hiddenSize: hidden, depth: 2, numHeads: heads,
                                numClasses: 3, learnSigma: false)
            let model = try TrainableDiT(DiT(randomWeights: cfg, seed: UInt64(7 * patch)))
            XCTAssertEqual(cfg.outChannels, 3)
            var rng = SplitMix64(seed: 9)
            let x0 = rng.uniform([2, 3, 8, 8], bound: 1), noise = rng.uniform([2, 3, 8, 8], bound: 1.7)
            let t = [5, 640], y = [2, 3]  // 3 = the null class
            let diffusion = ADMTrainingLoss.linear(steps: 1000)
            let xT = diffusion.qSample(x0, t: t, noise: noise)
            func loss() throws -> Double {
                let (out, _) = try model.trainingForward(xT, t: t.map(Float.init), y: y)
                var s = 0.0
                for i in 0..<out.count { let d = Double(out.data[i]) - Double(noise.data[i]); s += d * d }
                return s / Double(out.count)  // mean over items of the per-item mean = the overall mean
            }
            let result = try model.lossAndGradients(x0: x0, t: t, noise: noise, y: y, diffusion: diffusion)
            XCTAssertNil(result.vb, "no vb term without learned sigma")
            XCTAssertEqual(Double(result.loss), try loss(), accuracy: 1e-5)
            let checked = try checkParameterGradients(model, labelRows: [2 * hidden + 1, 3 * hidden + 2], loss: loss) { fd in
                2e-3 * max(abs(fd), 0.05)
            }
            XCTAssertGreaterThan(checked, 60, "patch \(patch)")
        }
    }

    /// PyTorch references made by `scripts/reference/make_train_fixture.py` (a folder with its
    /// own `weights.safetensors`, `config.json` and `io.safetensors`): the project's own in
    /// `Resources/train-mse` (MSE-only at two configurations, and learned sigma through the same
    /// script), and any such folder under the shared fixtures' `train/`, at the `train/tiny`
    /// tolerances.
    func testTrainStepMatchesScriptFixtures() throws {
        let own = Fixtures.packageRoot.appendingPathComponent("Tests/PipelineTests/Resources/train-mse").path
        let roots = [own, Fixtures.path("train")]
        let dirs = roots.flatMap { root in
            ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
                .filter { FileManager.default.fileExists(atPath: "\(root)/\($0)/weights.safetensors") }
                .map { "\(root)/\($0)" }
        }
        var mseCount = 0
        for dir in dirs {
            let inputs = "\(dir)/io.safetensors"
            let learnSigma = try SafeTensorsFile(path: inputs).metadata["learn_sigma"]
            if learnSigma == "False" { mseCount += 1 }
            print("\(dir): learn_sigma \(learnSigma ?? "?")")
            try assertTrainStepMatches(weights: "\(dir)/weights.safetensors", inputs: inputs)
        }
        XCTAssertGreaterThanOrEqual(mseCount, 2, "the MSE-only references in \(own)")
    }

    /// The trainer runs a fixed-variance model, predicting the noise or x0 (`predict_xstart`, the MSE
    /// then against x0): its loss falls, and the EMA weights reload as a `learn_sigma=False` DiT
    /// (C output channels) that predicts what it was trained to.
    func testTrainerTrainsAFixedVarianceModel() throws {
        for predictXstart in [false, true] {
            var o = TrainingOptions()
            o.imageSize = 16; o.patchSize = 4; o.hiddenSize = 32; o.depth = 2; o.numHeads = 2; o.numClasses = 4
            o.learnSigma = false; o.predictXstart = predictXstart
            o.steps = 40; o.batch = 16; o.lr = 2e-3; o.emaDecay = 0.9; o.gradClip = 1
            o.checkpointEvery = 1000; o.logEvery = 20; o.seed = 5
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("train-mse-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let data = TrainingImages(shapes: ShapesDataset(seed: 4, size: 16), count: 64)
            let trainer = try Trainer(options: o, data: data, out: dir, resume: false)
            var losses: [Double] = []
            try trainer.run { losses.append($0.loss) }
            XCTAssertEqual(losses.count, 2)
            XCTAssertLessThan(losses[1], losses[0], "the MSE falls over 40 steps (predict_xstart \(predictXstart)): \(losses)")
            let loaded = try DiT.load(path: dir + "/ema.safetensors")
            XCTAssertFalse(loaded.config.learnSigma)
            XCTAssertEqual(loaded.config.outChannels, 3)
            XCTAssertEqual(loaded.config.prediction, predictXstart ? .xStart : .epsilon)
        }
    }
}
