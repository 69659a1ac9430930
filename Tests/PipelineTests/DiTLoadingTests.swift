import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT

/// Strict loading: a missing, extra or mis-shaped tensor, a truncated file or a file
/// that is no checkpoint is a thrown error naming the file and the key.
final class DiTLoadingTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("dit-load") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes the tiny fixture's tensors, edited, plus its config, to a temp folder; returns the weights path.
    func writeVariant(_ edit: (inout [String: Tensor]) -> Void) throws -> String {
        let src = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        var tensors: [String: Tensor] = [:]
        for k in src.keys { tensors[k] = try src.tensor(k) }
        edit(&tensors)
        var w = SafeTensorsWriter()
        for (k, t) in tensors { w.add(k, t) }
        let path = dir + "/weights.safetensors"
        try w.write(to: path)
        try FileManager.default.copyItem(atPath: try Fixtures.require("dit/tiny/config.json"), toPath: dir + "/config.json")
        return path
    }

    func assertLoadError(_ path: String, mentions parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try DiT.load(path: path), file: file, line: line) { e in
            let text = "\(e)"
            for p in parts { XCTAssertTrue(text.contains(p), "'\(text)' should mention '\(p)'", file: file, line: line) }
        }
    }

    func testUnmodifiedVariantLoads() throws {
        let path = try writeVariant { _ in }
        XCTAssertNoThrow(try DiT.load(path: path))
    }

    func testMissingTensor() throws {
        let path = try writeVariant { $0["blocks.1.mlp.fc2.bias"] = nil }
        assertLoadError(path, mentions: [path, "blocks.1.mlp.fc2.bias", "missing"])
    }

    func testExtraTensor() throws {
        let path = try writeVariant { $0["blocks.2.attn.qkv.weight"] = Tensor(zeros: [192, 64]) }
        assertLoadError(path, mentions: [path, "blocks.2.attn.qkv.weight", "unexpected"])
    }

    func testMisShapedTensor() throws {
        let path = try writeVariant { $0["blocks.0.attn.proj.weight"] = Tensor(zeros: [64, 32]) }
        assertLoadError(path, mentions: [path, "blocks.0.attn.proj.weight", "[64, 32]", "[64, 64]"])
    }

    func testMisShapedPosEmbed() throws {
        let path = try writeVariant { $0["pos_embed"] = Tensor(zeros: [1, 9, 64]) }
        assertLoadError(path, mentions: [path, "pos_embed"])
    }

    func testTruncatedFile() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("dit/tiny/weights.safetensors")))
        let path = dir + "/cut.safetensors"
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path))
        assertLoadError(path, mentions: [path])
    }

    func testNotACheckpoint() throws {
        let path = dir + "/junk.safetensors"
        try Data("this is not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: path))
        assertLoadError(path, mentions: [path])
        // A valid safetensors file that is no DiT.
        var w = SafeTensorsWriter()
        w.add("encoder.conv_in.weight", Tensor(zeros: [4, 3, 3, 3]))
        let other = dir + "/other.safetensors"
        try w.write(to: other)
        assertLoadError(other, mentions: [other, "x_embedder.proj.weight"])
        assertLoadError(dir + "/absent.safetensors", mentions: ["absent.safetensors"])
    }

    func testConfigLayoutMismatch() throws {
        let weights = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let diffusersConfig = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny-diffusers/config.json"))
        XCTAssertThrowsError(try DiT(config: diffusersConfig, weights: weights)) { e in
            XCTAssertTrue("\(e)".contains("layout"), "\(e)")
        }
    }

    func testWrongConfigForWeights() throws {
        let weights = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        var c = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny/config.json"))
        c.depth = 3
        XCTAssertThrowsError(try DiT(config: c, weights: weights)) { e in
            XCTAssertTrue("\(e)".contains("blocks.2."), "\(e)")
        }
        c.depth = 2
        c.mlpHiddenSize = 128
        XCTAssertThrowsError(try DiT(config: c, weights: weights)) { e in
            XCTAssertTrue("\(e)".contains("blocks.0.mlp.fc1.weight"), "\(e)")
        }
    }

    func testDiffusersFolderMissingWeights() throws {
        try FileManager.default.copyItem(atPath: try Fixtures.require("dit/tiny-diffusers/config.json"), toPath: dir + "/config.json")
        assertLoadError(dir, mentions: [dir, "diffusion_pytorch_model.safetensors"])
    }

    func testEvalCommandLibrary() throws {
        let out = dir + "/out.safetensors"
        let names = try DiTEval.run(weights: try Fixtures.require("dit/tiny/weights.safetensors"),
                                    inputs: try Fixtures.require("dit/tiny/io.safetensors"), output: out)
        XCTAssertEqual(Set(names), ["out", "cfg_out"])
        let got = try SafeTensorsFile(path: out), io = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/io.safetensors"))
        assertClose(try got.tensor("out"), try io.tensor("out"), tol: 1e-4, "eval out")
        assertClose(try got.tensor("cfg_out"), try io.tensor("cfg_out"), tol: 1e-4, "eval cfg_out")
        XCTAssertEqual(got.metadata["cfg_guided_channels"], "first 3 (reference forward_with_cfg)")

        // Float t and y, and a partial cfg_ set.
        let io2 = try SafeTensorsFile(path: try Fixtures.require("dit/tiny-diffusers/io.safetensors"))
        var w = SafeTensorsWriter()
        w.add("x", try io2.tensor("x"))
        w.add("t", Tensor(shape: [3], values: try io2.doubles("t").map { Float($0) }))
        w.add("y", Tensor(shape: [3], values: try io2.doubles("y").map { Float($0) }))
        let floatIn = dir + "/float-in.safetensors"
        try w.write(to: floatIn)
        let names2 = try DiTEval.run(weights: try Fixtures.require("dit/tiny-diffusers"), inputs: floatIn, output: out)
        XCTAssertEqual(names2, ["out"])
        assertClose(try SafeTensorsFile(path: out).tensor("out"), try io2.tensor("out"), tol: 1e-4, "eval float t/y")

        w.add("cfg_x", try io.tensor("x"))
        let partial = dir + "/partial.safetensors"
        try w.write(to: partial)
        XCTAssertThrowsError(try DiTEval.run(weights: try Fixtures.require("dit/tiny/weights.safetensors"), inputs: partial, output: out)) { e in
            XCTAssertTrue("\(e)".contains("cfg_scale"), "\(e)")
        }
        w.add("y", Tensor(shape: [3], values: [0.5, 1, 2]))
        try w.write(to: partial)
        XCTAssertThrowsError(try DiTEval.run(weights: try Fixtures.require("dit/tiny/weights.safetensors"), inputs: partial, output: out)) { e in
            XCTAssertTrue("\(e)".contains("'y'[0]"), "\(e)")
        }
    }

    func testFlopCountAndLargestGEMM() throws {
        let m = try DiT(randomWeights: DiTConfig(preset: .s2, inputSize: 32), seed: 1)
        let n = 8, t = 256, d = 384, rows = Double(n * t)
        let perBlock = 2 * rows * Double(d) * Double(3 * d + d + 4 * d + 4 * d) + 2 * Double(n) * Double(d) * Double(6 * d)
            + 4 * Double(n) * Double(t) * Double(t) * Double(d)
        let rest = 2 * rows * Double(d) * 16 + 2 * Double(n) * Double(d) * Double(256 + d)
            + 2 * Double(n) * Double(d) * Double(2 * d) + 2 * rows * Double(d) * 32
        XCTAssertEqual(m.flops(batch: n), 12 * perBlock + rest, accuracy: 1)
        XCTAssertEqual(m.largestGEMM(batch: n), GEMMShape(m: 2048, n: 1536, k: 384))
    }
}
