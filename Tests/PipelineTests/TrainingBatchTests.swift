import XCTest
@testable import PipelineTensor
@testable import PipelineDiT
@testable import PipelineTraining

/// What the trainer feeds the model (issue 17's diagnosis of a chance-level shipped model):
/// every image with its own label, label dropout to the null class at the set rate, fresh
/// timesteps and noise every step, every item once per epoch; and the label table learns.
final class TrainingBatchTests: XCTestCase {
    /// Item i is the constant image Float(i); its label is not a function of i mod K (a label
    /// read from another item's position would show).
    private struct NumberedItems: TrainingData {
        let count: Int
        var numClasses: Int { 4 }
        var labels: [Int] { (0..<count).map { ($0 * 7 + $0 / 5) % 4 } }
        var sampleShape: [Int] { [3, 8, 8] }
        func batch(_ indices: [Int], epochs: [Int]) throws -> Tensor {
            let per = 3 * 8 * 8, out = Tensor(uninitialized: [indices.count, 3, 8, 8])
            for (k, i) in indices.enumerated() { (out.data + k * per).update(repeating: Float(i), count: per) }
            return out
        }
    }

    private func trainer(data: TrainingData, dropout: Double, batch: Int = 20) throws -> Trainer {
        var o = TrainingOptions()
        o.imageSize = 8; o.patchSize = 2; o.hiddenSize = 16; o.depth = 1; o.numHeads = 2; o.numClasses = 4
        o.batch = batch; o.lr = 1e-2; o.steps = 3; o.classDropoutProb = dropout; o.seed = 5
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID())").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return try Trainer(options: o, data: data, out: d, resume: false)
    }

    func testEachImageCarriesItsOwnLabelAndDropoutHitsTheNullLabel() throws {
        let data = NumberedItems(count: 40)
        let run = try trainer(data: data, dropout: 0.25)
        var nulls = 0, total = 0, tSum = 0
        var previousNoise: Tensor?
        for step in 0..<100 {
            let b = try run.batch(at: step)
            for k in 0..<b.indices.count {
                let i = b.indices[k]
                XCTAssertEqual(b.x0.data[k * 192], Float(i), "step \(step) item \(k): the image is not item \(i)")
                if b.y[k] == 4 { nulls += 1 } else {
                    XCTAssertEqual(b.y[k], data.labels[i], "step \(step) item \(k): image \(i) carries another item's label")
                }
                XCTAssert((0..<1000).contains(b.t[k]))
                tSum += b.t[k]; total += 1
            }
            if let p = previousNoise { XCTAssertNotEqual(p.data[0], b.noise.data[0], "step \(step) reuses the noise") }
            previousNoise = b.noise
            if step % 2 == 1 {  // 40 items, batch 20: steps 2e and 2e+1 make epoch e, every item once
                let epoch = try run.batch(at: step - 1).indices + b.indices
                XCTAssertEqual(epoch.sorted(), Array(0..<40), "epoch \(step / 2) does not visit every item once")
            }
        }
        let rate = Double(nulls) / Double(total)
        XCTAssertEqual(rate, 0.25, accuracy: 0.04, "label dropout rate \(rate) of \(total) labels, set to 0.25")
        XCTAssertEqual(Double(tSum) / Double(total), 499.5, accuracy: 30, "timesteps are not uniform over 0..<1000")
        let none = try trainer(data: data, dropout: 0)
        XCTAssertFalse(try (0..<20).contains { try none.batch(at: $0).y.contains(4) }, "no dropout, yet a null label")
    }

    /// After a few steps (adaLN-Zero: the label's gradient is zero until the modulation weights
    /// move) the rows of the labels in use get gradient and change; a row never used does not.
    func testLabelTableLearnsTheRowsInUse() throws {
        struct ThreeClasses: TrainingData {  // labels 0, 1, 2 only; row 3 is never used
            let shapes = TrainingImages(shapes: ShapesDataset(seed: 0, size: 8), count: 24)
            var count: Int { 24 }
            var numClasses: Int { 4 }
            var labels: [Int] { (0..<24).map { $0 % 3 } }
            var sampleShape: [Int] { [3, 8, 8] }
            func batch(_ indices: [Int], epochs: [Int]) throws -> Tensor { shapes.batch(indices) }
        }
        let run = try trainer(data: ThreeClasses(), dropout: 0.2, batch: 24)
        let before = run.model.labelTable.copy()
        for _ in 0..<3 { try run.trainStep() }
        let d = run.model.config.hiddenSize
        func rowChange(_ r: Int) -> Float {
            (0..<d).map { abs(run.model.labelTable.data[r * d + $0] - before.data[r * d + $0]) }.max()!
        }
        func rowGrad(_ r: Int) -> Float { (0..<d).map { abs(run.model.labelTableGrad.data[r * d + $0]) }.max()! }
        for r in [0, 1, 2, 4] {
            XCTAssertGreaterThan(rowGrad(r), 0, "label row \(r) got no gradient at step 3")
            XCTAssertGreaterThan(rowChange(r), 0, "label row \(r) did not move in 3 steps")
        }
        XCTAssertEqual(rowGrad(3), 0, "the unused label row 3 got gradient")
        XCTAssertEqual(rowChange(3), 0, "the unused label row 3 moved (weight decay is 0)")
    }
}
