import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT

/// Parity of forward and forward_with_cfg with the PyTorch reference on the fixtures.
final class DiTForwardTests: XCTestCase {
    struct IO {
        let file: SafeTensorsFile
        func x(_ k: String) throws -> Tensor { try file.tensor(k) }
        func floats(_ k: String) throws -> [Float] { try file.doubles(k).map { Float($0) } }
        func ints(_ k: String) throws -> [Int] { try file.int64s(k).map { Int($0) } }
    }

    func io(_ rel: String) throws -> IO { IO(file: try SafeTensorsFile(path: try Fixtures.require(rel))) }

    func testReferenceForwardMatchesFixture() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        XCTAssertEqual(model.config.layout, .reference)
        let io = try io("dit/tiny/io.safetensors")
        let out = try model.forward(try io.x("x"), t: try io.floats("t"), y: try io.ints("y"))
        assertClose(out, try io.x("out"), tol: 1e-4, "dit/tiny forward")
    }

    func testReferenceCFGForwardMatchesFixture() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let io = try io("dit/tiny/io.safetensors")
        let scale = try io.floats("cfg_scale")[0]
        let out = try model.forwardWithCFG(try io.x("cfg_x"), t: try io.floats("cfg_t"), y: try io.ints("cfg_y"), scale: scale)
        assertClose(out, try io.x("cfg_out"), tol: 1e-4, "dit/tiny forward_with_cfg")
    }

    func testDiffusersForwardMatchesFixture() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny-diffusers"))
        XCTAssertEqual(model.config.layout, .diffusers)
        XCTAssertEqual(model.config.mlpNormEps, 1e-5)
        let io = try io("dit/tiny-diffusers/io.safetensors")
        let out = try model.forward(try io.x("x"), t: try io.floats("t"), y: try io.ints("y"))
        assertClose(out, try io.x("out"), tol: 1e-4, "dit/tiny-diffusers forward")
    }

    /// The diffusers fixture has no CFG reference output: CFG there must equal the formula
    /// applied to two plain forwards (the reference's 3-channel form).
    func testDiffusersCFGForwardEqualsGuidedForwards() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny-diffusers"))
        let io = try io("dit/tiny-diffusers/io.safetensors")
        let x = try io.x("x").slice(0..<2)
        let t: [Float] = [5, 5, 5, 5], y = [1, 3, 10, 10]
        let cfg = try model.forwardWithCFG(Tensor.concat([x, x]), t: t, y: y, scale: 4)
        let cond = try model.forward(x, t: [5, 5], y: [1, 3]), uncond = try model.forward(x, t: [5, 5], y: [10, 10])
        let expected = Tensor.concat([cond, uncond])
        let plane = 64, oc = 8
        for i in 0..<2 { for ch in 0..<3 { for k in 0..<plane {
            let c = cond.data[(i * oc + ch) * plane + k], u = uncond.data[(i * oc + ch) * plane + k]
            let g = u + 4 * (c - u)
            expected.data[(i * oc + ch) * plane + k] = g
            expected.data[((2 + i) * oc + ch) * plane + k] = g
        } } }
        assertClose(cfg, expected, tol: 1e-5, "diffusers CFG")
    }

    /// The reference guides channels 0..<3 only; the standard form also guides channel 3
    /// (the 4th eps channel); the learned-variance channels 4..<8 are never guided.
    func testCFGThreeChannelQuirk() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let io = try io("dit/tiny/io.safetensors")
        let x = try io.x("cfg_x"), t = try io.floats("cfg_t"), y = try io.ints("cfg_y")
        let quirk = try model.forwardWithCFG(x, t: t, y: y, scale: 4)
        let all = try model.forwardWithCFG(x, t: t, y: y, scale: 4, guideAllChannels: true)
        let plane = 64, oc = 8
        for n in 0..<4 { for ch in 0..<oc {
            var diff: Float = 0
            for k in 0..<plane { diff = max(diff, abs(quirk.data[(n * oc + ch) * plane + k] - all.data[(n * oc + ch) * plane + k])) }
            if ch == 3 {
                XCTAssertGreaterThan(diff, 1e-3, "item \(n) channel \(ch) should differ")
            } else {
                XCTAssertEqual(diff, 0, "item \(n) channel \(ch) should be identical")
            }
        } }
        // Standard form: channel 3 of both halves equals the guided value.
        let cond = try model.forward(x.slice(0..<2), t: Array(t[0..<2]), y: Array(y[0..<2]))
        let uncond = try model.forward(x.slice(0..<2), t: Array(t[2..<4]), y: Array(y[2..<4]))
        for i in 0..<2 { for k in 0..<plane {
            let c = cond.data[(i * oc + 3) * plane + k], u = uncond.data[(i * oc + 3) * plane + k]
            XCTAssertEqual(all.data[(i * oc + 3) * plane + k], u + 4 * (c - u), accuracy: 1e-4)
            XCTAssertEqual(all.data[((2 + i) * oc + 3) * plane + k], u + 4 * (c - u), accuracy: 1e-4)
            // Quirk form: channel 3 keeps each half's own output.
            XCTAssertEqual(quirk.data[(i * oc + 3) * plane + k], c, accuracy: 1e-5)
            XCTAssertEqual(quirk.data[((2 + i) * oc + 3) * plane + k], u, accuracy: 1e-5)
        } }
    }

    func testStoredPosEmbedEqualsRecomputed() throws {
        let file = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let stored = try file.tensor("pos_embed").reshaped([16, 64])
        let computed = try PositionEmbedding.sincos2D(embedDim: 64, gridSize: 4)
        var worst: Float = 0
        for i in 0..<stored.count { worst = max(worst, abs(stored.data[i] - computed.data[i])) }
        XCTAssertLessThan(worst, 1e-6)
    }

    /// Without `pos_embed` in the file the model recomputes it and still matches.
    func testForwardWithoutStoredPosEmbed() throws {
        let path = try Fixtures.require("dit/tiny/weights.safetensors")
        let source = try FilteredSource(SafeTensorsFile(path: path), dropping: ["pos_embed"])
        let model = try DiT(config: try DiTConfig.load(configFile: try Fixtures.require("dit/tiny/config.json")), weights: source)
        let io = try io("dit/tiny/io.safetensors")
        let out = try model.forward(try io.x("x"), t: try io.floats("t"), y: try io.ints("y"))
        assertClose(out, try io.x("out"), tol: 1e-4, "forward with recomputed pos_embed")
    }

    func testTimestepFrequencies() {
        // Reference: cos first, f_i = exp(-ln(1e4)·i/128); diffusers: divides by 127.
        let f = TimestepEmbedder.frequencies([0, 10], shift: 0)
        XCTAssertEqual(f.data[0], 1)        // cos(0)
        XCTAssertEqual(f.data[128], 0)      // sin(0)
        XCTAssertEqual(f.data[256 + 0], cosf(10), accuracy: 1e-6)
        XCTAssertEqual(f.data[256 + 128 + 1], sinf(10 * expf(-logf(10000) / 128)), accuracy: 1e-6)
        let g = TimestepEmbedder.frequencies([10], shift: 1)
        XCTAssertEqual(g.data[127], cosf(10 * expf(-logf(10000))), accuracy: 1e-6)
    }

    func testBadInputsThrow() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let x = Tensor(zeros: [2, 4, 8, 8])
        XCTAssertThrowsError(try model.forward(Tensor(zeros: [2, 3, 8, 8]), t: [1, 2], y: [0, 1]))
        XCTAssertThrowsError(try model.forward(x, t: [1], y: [0, 1]))
        XCTAssertThrowsError(try model.forward(x, t: [1, 2], y: [0, 11])) { e in
            XCTAssertTrue("\(e)".contains("label 11"), "\(e)")
        }
        XCTAssertThrowsError(try model.forwardWithCFG(Tensor(zeros: [3, 4, 8, 8]), t: [1, 2, 3], y: [0, 1, 2], scale: 2))
    }

    /// The same model answers the same at different batch sizes (workspace reuse).
    func testBatchSizesAgree() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let io = try io("dit/tiny/io.safetensors")
        let x = try io.x("x"), t = try io.floats("t"), y = try io.ints("y")
        let full = try model.forward(x, t: t, y: y)
        let one = try model.forward(x.slice(1..<2), t: [t[1]], y: [y[1]])
        assertClose(one, full.slice(1..<2), tol: 1e-6, "batch 1 vs 3")
        assertClose(try model.forward(x, t: t, y: y), full, tol: 0, "repeat")
    }
}

/// A source that hides some keys of another (tests of optional / missing tensors).
final class FilteredSource: TensorSource {
    let base: TensorSource
    let dropped: Set<String>
    init(_ base: TensorSource, dropping: Set<String>) { self.base = base; self.dropped = dropping }
    var sourceName: String { base.sourceName }
    var keys: [String] { base.keys.filter { !dropped.contains($0) } }
    func info(_ key: String) -> TensorInfo? { dropped.contains(key) ? nil : base.info(key) }
    func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        guard !dropped.contains(key) else { throw WeightError.missingKey(file: sourceName, key: key) }
        return try base.withRawBytes(key, body)
    }
}

/// The same model from PyTorch checkpoints read through `WeightsFile.open`: the `model` pick
/// and the eval command on a train.py checkpoint.
final class DiTTorchCheckpointTests: XCTestCase {
    func forwardMatches(_ model: DiT, _ what: String) throws {
        let io = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/io.safetensors"))
        let out = try model.forward(try io.tensor("x"), t: try io.doubles("t").map { Float($0) }, y: try io.int64s("y").map { Int($0) })
        assertClose(out, try io.tensor("out"), tol: 1e-4, "\(what) forward")
        let cfg = try model.forwardWithCFG(try io.tensor("cfg_x"), t: try io.doubles("cfg_t").map { Float($0) },
                                           y: try io.int64s("cfg_y").map { Int($0) }, scale: Float(try io.doubles("cfg_scale")[0]))
        assertClose(cfg, try io.tensor("cfg_out"), tol: 1e-4, "\(what) forward_with_cfg")
    }

    // state_dict.pt and checkpoint.pt (EMA) forward/CFG parity: TorchCheckpointDiTTests.

    /// The fixture's `model` and `ema` hold the same weights (train.py's EMA starts as a copy),
    /// so picking `model` must give the same numbers.
    func testTrainCheckpointModelPick() throws {
        try forwardMatches(try DiT.load(path: try Fixtures.require("dit/tiny/checkpoint.pt"), pick: .model), "checkpoint.pt (model)")
    }

    func testEvalFromCheckpoint() throws {
        let dir = Fixtures.tempDir("dit-eval-pt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/out.safetensors"
        try DiTEval.run(weights: try Fixtures.require("dit/tiny/checkpoint.pt"),
                        inputs: try Fixtures.require("dit/tiny/io.safetensors"), output: out)
        let io = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/io.safetensors"))
        assertClose(try SafeTensorsFile(path: out).tensor("cfg_out"), try io.tensor("cfg_out"), tol: 1e-4, "eval checkpoint.pt")
    }
}
