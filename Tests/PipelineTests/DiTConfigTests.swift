import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT

/// Presets, config.json parsing in both key sets, and inference from tensor shapes.
final class DiTConfigTests: XCTestCase {
    func testPresetsMatchModelsPy() {
        XCTAssertEqual(DiTPreset.allCases.count, 12)
        let expected: [String: (Int, Int, Int, Int)] = [  // depth, hidden, patch, heads
            "DiT-XL/2": (28, 1152, 2, 16), "DiT-XL/4": (28, 1152, 4, 16), "DiT-XL/8": (28, 1152, 8, 16),
            "DiT-L/2": (24, 1024, 2, 16), "DiT-L/4": (24, 1024, 4, 16), "DiT-L/8": (24, 1024, 8, 16),
            "DiT-B/2": (12, 768, 2, 12), "DiT-B/4": (12, 768, 4, 12), "DiT-B/8": (12, 768, 8, 12),
            "DiT-S/2": (12, 384, 2, 6), "DiT-S/4": (12, 384, 4, 6), "DiT-S/8": (12, 384, 8, 6),
        ]
        for p in DiTPreset.allCases {
            guard let e = expected[p.rawValue] else { XCTFail("unexpected preset \(p.rawValue)"); continue }
            XCTAssertEqual(p.depth, e.0, p.rawValue)
            XCTAssertEqual(p.hiddenSize, e.1, p.rawValue)
            XCTAssertEqual(p.patchSize, e.2, p.rawValue)
            XCTAssertEqual(p.numHeads, e.3, p.rawValue)
            XCTAssertEqual(DiTPreset(parsing: p.rawValue), p)
            XCTAssertEqual(DiTConfig(preset: p).preset, p)
        }
    }

    func testPresetParsing() {
        XCTAssertEqual(DiTPreset(parsing: "DiT-XL/2"), .xl2)
        XCTAssertEqual(DiTPreset(parsing: "dit-xl-2"), .xl2)
        XCTAssertEqual(DiTPreset(parsing: "B/4"), .b4)
        XCTAssertEqual(DiTPreset(parsing: "DiT_S_8"), .s8)
        XCTAssertNil(DiTPreset(parsing: "DiT-XL/3"))
        XCTAssertNil(DiTPreset(parsing: "DiT-M/2"))
        XCTAssertNil(DiTPreset(parsing: ""))
        XCTAssertEqual(DiTPreset.numHeads(forHiddenSize: 384), 6)
        XCTAssertEqual(DiTPreset.numHeads(forHiddenSize: 768), 12)
        XCTAssertEqual(DiTPreset.numHeads(forHiddenSize: 1024), 16)
        XCTAssertEqual(DiTPreset.numHeads(forHiddenSize: 1152), 16)
        XCTAssertNil(DiTPreset.numHeads(forHiddenSize: 64))
    }

    func testDerivedSizes() {
        let c = DiTConfig(preset: .xl2, inputSize: 64)
        XCTAssertEqual(c.tokens, 1024)
        XCTAssertEqual(c.outChannels, 8)
        XCTAssertEqual(c.headDim, 72)
        XCTAssertEqual(c.mlpHiddenSize, 4608)
        XCTAssertEqual(c.labelTableRows, 1001)
        var pixel = DiTConfig(preset: .s8, inputSize: 64, inChannels: 3, numClasses: 10, learnSigma: false)
        XCTAssertEqual(pixel.outChannels, 3)
        pixel.learnSigma = true
        XCTAssertEqual(pixel.outChannels, 6)
    }

    func testParseFixtureConfig() throws {
        let c = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny/config.json"))
        XCTAssertEqual(c, DiTConfig(inputSize: 8, patchSize: 2, inChannels: 4, hiddenSize: 64, depth: 2, numHeads: 4,
                                    mlpRatio: 4, numClasses: 10, hasNullClass: true, learnSigma: true))
    }

    func testParseDiffusersConfig() throws {
        let c = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny-diffusers/config.json"))
        XCTAssertEqual(c.layout, .diffusers)
        XCTAssertEqual(c.hiddenSize, 64)
        XCTAssertEqual(c.numHeads, 4)
        XCTAssertEqual(c.depth, 2)
        XCTAssertEqual(c.inputSize, 8)
        XCTAssertEqual(c.numClasses, 10)
        XCTAssertTrue(c.learnSigma)
        XCTAssertEqual(c.mlpNormEps, 1e-5)
    }

    func testParseDefaultsPresetsAndErrors() throws {
        let empty = try DiTConfig.parse(json: Data("{}".utf8), file: "c.json")
        XCTAssertEqual(empty.preset, .xl2)  // models.py's constructor defaults
        XCTAssertEqual(empty.inputSize, 32)
        let named = try DiTConfig.parse(json: Data(#"{"model": "DiT-B/4", "image_size": 512, "num_classes": 10}"#.utf8), file: "c.json")
        XCTAssertEqual(named.preset, .b4)
        XCTAssertEqual(named.inputSize, 64)
        XCTAssertEqual(named.numClasses, 10)
        let noNull = try DiTConfig.parse(json: Data(#"{"class_dropout_prob": 0, "learn_sigma": false}"#.utf8), file: "c.json")
        XCTAssertFalse(noNull.hasNullClass)
        XCTAssertEqual(noNull.labelTableRows, 1000)
        XCTAssertEqual(noNull.outChannels, 4)
        for bad in [#"{"depth": "12"}"#, #"{"learn_sigma": 1}"#, #"{"hidden_size": 100, "num_heads": 16}"#,
                    #"{"model": "DiT-Q/2"}"#, #"{"input_size": 33}"#, "[1]", "not json",
                    #"{"num_attention_heads": 4, "norm_type": "ada_norm"}"#,
                    #"{"num_attention_heads": 4, "in_channels": 4, "out_channels": 5}"#] {
            XCTAssertThrowsError(try DiTConfig.parse(json: Data(bad.utf8), file: "c.json"), bad) { e in
                XCTAssertTrue("\(e)".contains("c.json"), "\(e)")
            }
        }
    }

    func testInferFromReferenceShapes() throws {
        let source = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let inferred = try DiTConfig.infer(from: source, numHeads: 4)
        let parsed = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny/config.json"))
        XCTAssertEqual(inferred, parsed)
        // Width 64 matches no preset: heads must be given.
        XCTAssertThrowsError(try DiTConfig.infer(from: source)) { e in
            XCTAssertTrue("\(e)".contains("--num-heads"), "\(e)")
        }
        // Without pos_embed the input size is unknown unless given.
        let noPos = FilteredSource(source, dropping: ["pos_embed"])
        XCTAssertThrowsError(try DiTConfig.infer(from: noPos, numHeads: 4)) { e in
            XCTAssertTrue("\(e)".contains("input size"), "\(e)")
        }
        XCTAssertEqual(try DiTConfig.infer(from: noPos, numHeads: 4, inputSize: 8), parsed)
    }

    func testInferFromDiffusersShapes() throws {
        let source = try SafeTensorsFile(path: try Fixtures.require("dit/tiny-diffusers/diffusion_pytorch_model.safetensors"))
        let inferred = try DiTConfig.infer(from: source, numHeads: 4, inputSize: 8)
        let parsed = try DiTConfig.load(configFile: try Fixtures.require("dit/tiny-diffusers/config.json"))
        XCTAssertEqual(inferred, parsed)
    }

    /// A lone weights file with no config beside it: everything from shapes (+ --num-heads).
    func testLoadWithoutConfigInfersAndMatches() throws {
        let dir = Fixtures.tempDir("dit-noconfig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let copy = dir + "/model.safetensors"
        try FileManager.default.copyItem(atPath: try Fixtures.require("dit/tiny/weights.safetensors"), toPath: copy)
        XCTAssertThrowsError(try DiT.load(path: copy))  // width 64: no preset rule
        let model = try DiT.load(path: copy, numHeads: 4)
        let io = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/io.safetensors"))
        let out = try model.forward(try io.tensor("x"), t: try io.doubles("t").map { Float($0) },
                                    y: try io.int64s("y").map { Int($0) })
        assertClose(out, try io.tensor("out"), tol: 1e-4, "inferred config forward")
        // Wrong head count: same shapes, different numbers.
        let wrong = try DiT.load(path: copy, numHeads: 2)
        let out2 = try wrong.forward(try io.tensor("x"), t: try io.doubles("t").map { Float($0) },
                                     y: try io.int64s("y").map { Int($0) })
        XCTAssertGreaterThan(zip(out.values, out2.values).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testRandomModelsOfEveryLayoutRun() throws {
        for layout in [DiTKeyLayout.reference, .diffusers] {
            var c = DiTConfig(inputSize: 8, patchSize: 4, inChannels: 3, hiddenSize: 48, depth: 2, numHeads: 3,
                              numClasses: 5, learnSigma: false, layout: layout)
            c.mlpNormEps = layout == .reference ? 1e-6 : 1e-5
            let m = try DiT(randomWeights: c, seed: 7)
            let out = try m.forward(Tensor(shape: [2, 3, 8, 8], repeating: 0.3), t: [1, 500.5], y: [0, 5])
            XCTAssertEqual(out.shape, [2, 3, 8, 8])
            XCTAssertTrue(out.values.allSatisfy { $0.isFinite })
            let again = try DiT(randomWeights: c, seed: 7).forward(Tensor(shape: [2, 3, 8, 8], repeating: 0.3), t: [1, 500.5], y: [0, 5])
            XCTAssertEqual(out.values, again.values)
        }
    }
}
