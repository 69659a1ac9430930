import XCTest
@testable import Pipeline

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
        // One AdamW step from zero state moves each weight by lr·g/(|g| + ε'): nearly lr·sign(g).
        // Where the reference gradient is float noise (e.g. the key bias, whose gradient is
        // exactly zero analytically because softmax ignores a per-row constant; PyTorch's is
        // ±1e-9) the sign, hence the update, is undetermined within the gradient tolerance.
        // The 0.1·lr bound is therefore waived only where the gradient is undetermined:
        // |g_ref| < 1e-2·max|g_ref| (below 10× the gradient tolerance, where an error within
        // tolerance can move the update by more than 0.1·lr); such an element must still be a
        // valid first Adam step (|Δ| ≤ lr) from the same starting weight, and they must be rare.
        let before = try SafeTensorsFile(path: weights)
        var undetermined = 0, total = 0
        let afterKeys = ref.keys.filter { $0.hasPrefix("after.") }
        XCTAssertEqual(Set(afterKeys), Set(got.keys.filter { $0.hasPrefix("after.") }))
        for key in afterKeys {
            let name = String(key.dropFirst("after.".count))
            let a = try got.tensor(key), e = try ref.tensor(key), w0 = try before.tensor(name)
            let g = ref.contains("grad." + name) ? try ref.tensor("grad." + name) : nil
            let cut = (g?.maxAbs ?? 0) * 1e-2
            var worst: Float = 0, worstLoose: Float = 0
            for i in 0..<e.count {
                total += 1
                let diff = abs(a.data[i] - e.data[i])
                if diff > 0.1 * lr, let g, abs(g.data[i]) < cut {
                    undetermined += 1
                    worstLoose = max(worstLoose, abs(a.data[i] - w0.data[i]) - lr)
                } else {
                    worst = max(worst, diff)
                }
            }
            XCTAssertLessThanOrEqual(worst, 0.1 * lr, "\(key): max diff \(worst)")
            XCTAssertLessThanOrEqual(worstLoose, 1e-6, "\(key): an update larger than lr")
        }
        XCTAssertLessThan(undetermined * 1000, total, "most updates are determined by the gradient (\(undetermined) of \(total) differ by more than 0.1 lr)")
    }
}
