import XCTest
@testable import PipelineFiles
@testable import PipelineTraining

/// Training parity on `train/tiny`: loss, every gradient, every tensor after one AdamW step.
final class TrainingTests: XCTestCase {
    func testTrainStepMatchesFixture() throws {
        let weights = try Fixtures.require("dit/tiny/weights.safetensors")
        let inputs = try Fixtures.require("train/tiny/io.safetensors")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("train-step-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try TrainStepEval.run(weights: weights, inputs: inputs, output: out)
        let got = try SafeTensorsFile(path: out), ref = try SafeTensorsFile(path: inputs)
        let lr = Float(ref.metadata["lr"] ?? "") ?? 0
        XCTAssertGreaterThan(lr, 0)
        assertClose(try got.tensor("loss"), try ref.tensor("loss"), tol: 1e-4, "loss")
        let gradKeys = ref.keys.filter { $0.hasPrefix("grad.") }
        XCTAssertEqual(Set(gradKeys), Set(got.keys.filter { $0.hasPrefix("grad.") }), "trainable parameters")
        XCTAssertFalse(got.contains("grad.pos_embed"), "pos_embed is a frozen buffer")
        for key in gradKeys {
            // Each gradient within 1e-3 of its own largest magnitude (no floor).
            let a = try got.tensor(key), e = try ref.tensor(key)
            XCTAssertEqual(a.shape, e.shape, key)
            var worst: Float = 0
            for i in 0..<e.count { worst = max(worst, abs(a.data[i] - e.data[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-3 * e.maxAbs, "\(key): max diff \(worst), scale \(e.maxAbs)")
        }
        // After one AdamW step: each weight within 0.1·lr of the reference (the fixture
        // README's rule), except where the reference gradient is float32 rounding noise.
        //
        // Reference quirk (a property of the fixture, not of either implementation): AdamW's
        // first step from zero state moves each weight by lr·m̂/(√v̂ + eps) = lr·g/(|g| + eps),
        // i.e. ≈ lr·sign(g) for any |g| ≫ eps = 1e-8. Where the reference gradient is rounding
        // noise — the key-projection bias (`attn.qkv.bias[C..<2C]`), whose gradient is exactly
        // zero analytically because softmax ignores a per-row constant, comes out of PyTorch as
        // ±1e-9; a handful of weights with |g| ~ 1e-7·max|g| — its sign is set by the summation
        // order, and any implementation that sums in another order moves that weight by up to
        // ±lr the other way: up to 2·lr apart although both are correct to float32.
        //
        // The rule: noise floor = 1e-5 · max|g_ref| of the tensor (~100 float32 ulps of its largest
        // gradient; the gradients themselves must match to 1e-3 of it, above). Every element whose
        // reference |g| is above the floor: |after − after_ref| ≤ 0.1·lr (strict). Below the floor:
        // |after − after_ref| ≤ 2·lr + 0.1·lr, and the step is still a valid first Adam step
        // (|after − before| ≤ lr). Both counts are printed. On train/tiny 691 of 183,200 elements
        // lie below the floor (448 of them exactly zero: unused label rows); 61 differ by more than
        // 0.1·lr (60 key biases, 1 fc1 weight), by at most 0.45·lr (|g| ~ 1e-9 is near eps, so the
        // step is below lr), all at |g_ref| ≤ 2e-7·max|g_ref|: 50x under the floor.
        let before = try SafeTensorsFile(path: weights)
        var belowFloor = 0, belowFloorLoose = 0, total = 0
        let afterKeys = ref.keys.filter { $0.hasPrefix("after.") }
        XCTAssertEqual(Set(afterKeys), Set(got.keys.filter { $0.hasPrefix("after.") }))
        for key in afterKeys.sorted() {
            let name = String(key.dropFirst("after.".count))
            let a = try got.tensor(key), e = try ref.tensor(key), w0 = try before.tensor(name)
            XCTAssertEqual(a.shape, e.shape, key)
            let g = ref.contains("grad." + name) ? try ref.tensor("grad." + name) : nil
            let floor = (g?.maxAbs ?? 0) * 1e-5
            var worst: Float = 0, worstNoise: Float = 0, worstStep: Float = 0, loose = 0
            for i in 0..<e.count {
                total += 1
                let diff = abs(a.data[i] - e.data[i])
                if let g, abs(g.data[i]) <= floor {
                    belowFloor += 1
                    if diff > 0.1 * lr { loose += 1 }
                    worstNoise = max(worstNoise, diff)
                    worstStep = max(worstStep, abs(a.data[i] - w0.data[i]))
                } else {
                    worst = max(worst, diff)
                }
            }
            belowFloorLoose += loose
            XCTAssertLessThanOrEqual(worst, 0.1 * lr, "\(key): max diff \(worst) where the gradient is determined")
            XCTAssertLessThanOrEqual(worstNoise, 2.1 * lr, "\(key): max diff \(worstNoise) where the reference gradient is noise")
            XCTAssertLessThanOrEqual(worstStep, lr * (1 + 1e-3), "\(key): an update larger than lr")
            if loose > 0 { print("train/tiny \(key): \(loose) elements below the noise floor differ by > 0.1·lr (max \(worstNoise / lr)·lr)") }
        }
        print("train/tiny after-step: \(belowFloor) of \(total) elements below the gradient noise floor, \(belowFloorLoose) of them differ by more than 0.1·lr")
        XCTAssertLessThan(belowFloor * 100, total, "the noise floor exempts under 1% of the elements")
    }
}
