import XCTest
@testable import PipelineTensor
@testable import PipelineDiT
@testable import PipelineTraining

/// Finite-difference checks of the training backward passes, piece by piece.
final class TrainingGradientTests: XCTestCase {
    private func randomTensor(_ shape: [Int], seed: UInt64, bound: Float = 1) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return rng.uniform(shape, bound: bound)
    }

    /// d(batch-mean ADM loss)/d(output) against central differences, at t = 0 (decoder NLL),
    /// a small t and a large t.
    func testADMLossGradient() throws {
        let loss = ADMTrainingLoss.linear(steps: 1000)
        let x0 = randomTensor([3, 2, 4, 4], seed: 1)
        // Some pixels at the data range's edges, where the decoder NLL switches branch.
        x0.data[0] = -1; x0.data[1] = 1; x0.data[2] = 0.9995
        let noise = randomTensor([3, 2, 4, 4], seed: 2, bound: 1.5)
        let t = [0, 5, 900]
        let xT = loss.qSample(x0, t: t, noise: noise)
        let out = randomTensor([3, 4, 4, 4], seed: 3, bound: 0.9)
        let base = try loss.lossAndGradient(output: out, x0: x0, xT: xT, t: t, noise: noise)
        let per = 2 * 16
        // The eps channels see only the MSE (the vb term's mean is stop-gradient'ed); the
        // variance channels only the vb term.
        func total(varianceChannel: Bool) throws -> Double {
            let r = try loss.lossAndGradient(output: out, x0: x0, xT: xT, t: t, noise: noise)
            let terms = varianceChannel ? r.vb : r.mse
            return terms.reduce(0.0) { $0 + Double($1) } / Double(terms.count)
        }
        var checked = 0
        for i in stride(from: 0, to: out.count, by: 7) {
            let keep = out.data[i], h: Float = 1e-2
            let isVar = (i % (2 * per)) >= per
            out.data[i] = keep + h; let up = try total(varianceChannel: isVar)
            out.data[i] = keep - h; let down = try total(varianceChannel: isVar)
            out.data[i] = keep
            let fd = (up - down) / (2 * Double(h)), g = Double(base.dOutput.data[i])
            XCTAssertEqual(g, fd, accuracy: 2e-3 * max(abs(fd), 1e-3) + 2e-5, "output element \(i)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 20)
    }
}

/// Finite differences of the whole DiT backward pass (every parameter kind) on a tiny model.
final class DiTBackwardGradientTests: XCTestCase {
    func testEveryParameterKindAgainstFiniteDifferences() throws {
        let cfg = DiTConfig(inputSize: 4, patchSize: 2, inChannels: 2, hiddenSize: 8, depth: 2, numHeads: 2,
                            numClasses: 3, learnSigma: true)
        let model = try TrainableDiT(DiT(randomWeights: cfg, seed: 11))
        var rng = SplitMix64(seed: 5)
        let x = rng.uniform([2, 2, 4, 4], bound: 1.5)
        let weights = rng.uniform([2, 4, 4, 4], bound: 1)   // loss = Σ out · weights
        let t: [Float] = [3, 600], y = [1, 3]                // 3 = the null class
        func loss() throws -> Double {
            let (out, _) = try model.trainingForward(x, t: t, y: y)
            var s = 0.0
            for i in 0..<out.count { s += Double(out.data[i]) * Double(weights.data[i]) }
            return s
        }
        model.zeroGradients()
        let (_, acts) = try model.trainingForward(x, t: t, y: y)
        model.backward(weights, acts: acts)
        var checked = 0
        for p in model.parameters {
            guard let g = p.grad else { XCTAssertEqual(p.name, "pos_embed"); continue }
            // A few elements of every tensor, including rows of the label table that are used.
            let picks = p.name.hasPrefix("y_embedder") ? [8 + 1, 24 + 5] : [0, p.value.count / 2, p.value.count - 1]
            for i in picks {
                let keep = p.value.data[i], h: Float = 1e-2
                p.value.data[i] = keep + h; let up = try loss()
                p.value.data[i] = keep - h; let down = try loss()
                p.value.data[i] = keep
                let fd = (up - down) / (2 * Double(h))
                XCTAssertEqual(Double(g.data[i]), fd, accuracy: 5e-3 * max(1, abs(fd)), "\(p.name)[\(i)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 60)
        // Unused label rows get no gradient.
        for j in 0..<8 { XCTAssertEqual(model.labelTableGrad.data[j], 0, "row 0 is not in the batch") }
    }
}

/// The training forward pass equals the inference `DiT.forward`, and saved weights reload.
final class TrainingForwardConsistencyTests: XCTestCase {
    func testTrainingForwardMatchesInference() throws {
        let cfg = DiTConfig(inputSize: 8, patchSize: 4, inChannels: 3, hiddenSize: 16, depth: 2, numHeads: 2,
                            numClasses: 4, learnSigma: true)
        let dit = try DiT(randomWeights: cfg, seed: 21)
        let model = try TrainableDiT(dit)
        var rng = SplitMix64(seed: 8)
        let x = rng.uniform([3, 3, 8, 8], bound: 2)
        let t: [Float] = [0, 250, 999], y = [0, 4, 2]
        let (a, _) = try model.trainingForward(x, t: t, y: y)
        let b = try dit.forward(x, t: t, y: y)
        assertClose(a, b, tol: 1e-5, "training forward vs DiT.forward")
        let c = try model.inferenceModel().forward(x, t: t, y: y)
        assertClose(c, b, tol: 1e-5, "round trip through the state dict")
    }
}
