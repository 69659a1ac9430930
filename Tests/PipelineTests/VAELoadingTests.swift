import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineVAE

/// Posterior, pixel conversion, identity autoencoder and strict loading of AutoencoderKL.
final class VAELoadingTests: XCTestCase {
    static let small = AutoencoderKLConfig(blockOutChannels: [32, 32], layersPerBlock: 1, latentChannels: 4,
                                           scalingFactor: 0.18215)

    /// A random-weight model written as a diffusers folder; returns (folder, model, tensors).
    func writeFolder(config: AutoencoderKLConfig = small, configJSON: String? = nil,
                     edit: (inout [(String, Tensor)]) -> Void = { _ in }) throws -> (String, AutoencoderKL) {
        let params = RandomTensorSource.vae(seed: 5)
        let model = try AutoencoderKL.load(config: config, weights: params)
        var tensors = params.drawn
        edit(&tensors)
        let dir = Fixtures.tempDir("vae")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter()
        for (k, t) in tensors { w.add(k, t) }
        try w.write(to: dir + "/diffusion_pytorch_model.safetensors")
        let json = configJSON ?? """
            {"_class_name": "AutoencoderKL", "block_out_channels": \(config.blockOutChannels),
             "layers_per_block": \(config.layersPerBlock), "latent_channels": \(config.latentChannels),
             "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
             "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "scaling_factor": 0.18215,
             "shift_factor": null, "norm_num_groups": 32, "act_fn": "silu"}
            """
        try json.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
        return (dir, model)
    }

    func image(_ n: Int = 1, _ size: Int = 8) -> Tensor {
        let t = Tensor(uninitialized: [n, 3, size, size])
        for i in 0..<t.count { t.data[i] = sinf(Float(i) * 0.37) }
        return t
    }

    func testFolderRoundTripLoadsStrictly() throws {
        let (dir, model) = try writeFolder()
        let loaded = try AutoencoderKL.load(folder: dir)
        XCTAssertEqual(loaded.config.blockOutChannels, [32, 32])
        let x = image()
        let a = try model.encode(x), b = try loaded.encode(x)
        XCTAssertEqual(a.mean.values, b.mean.values)
        XCTAssertEqual(try model.decodeUnscaled(a.mean).values, try loaded.decodeUnscaled(b.mean).values)
    }

    func testConfigInferredFromWeightShapes() throws {
        var c = AutoencoderKLConfig(blockOutChannels: [32, 64, 64], layersPerBlock: 2, latentChannels: 3,
                                    scalingFactor: 0.18215, useQuantConv: false, midBlockAddAttention: false)
        c.outChannels = 1
        for config in [VAELoadingTests.small, c] {
            let (dir, model) = try writeFolder(config: config)
            try FileManager.default.removeItem(atPath: dir + "/config.json")
            let file = dir + "/diffusion_pytorch_model.safetensors"
            XCTAssertEqual(try AutoencoderKLConfig.infer(from: SafeTensorsFile(path: file)), config)
            // A folder without config.json, and the weights file itself.
            for path in [dir, file] {
                let loaded = try AutoencoderKL.load(folder: path)
                XCTAssertEqual(loaded.config, config)
                XCTAssertEqual(try loaded.encode(image(1, 8)).mean.values, try model.encode(image(1, 8)).mean.values)
            }
        }
        // Not a VAE state dict.
        let dit = try Fixtures.require("dit/tiny/weights.safetensors")
        XCTAssertThrowsError(try AutoencoderKLConfig.infer(from: SafeTensorsFile(path: dit))) {
            XCTAssertTrue("\($0)".contains("AutoencoderKL"), "\($0)")
        }
    }

    func testPyTorchBinFolderLoads() throws {
        // diffusers folders of older models hold diffusion_pytorch_model.bin (a torch.save zip).
        let (dir, model) = try writeFolder()
        let st = try SafeTensorsFile(path: dir + "/diffusion_pytorch_model.safetensors")
        var p = PickleBuilder()
        var storages: [String: [UInt8]] = [:]
        p.dict(st.keys.enumerated().map { i, key in
            let t = try! st.tensor(key)
            storages["\(i)"] = bytesOf(t.values)
            var strides = [Int](repeating: 1, count: t.rank)
            for d in stride(from: t.rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * t.shape[d + 1] }
            return (key, { $0.tensor(storage: "\(i)", numel: t.count, shape: t.shape, stride: strides) })
        })
        p.stop()
        try FileManager.default.removeItem(atPath: dir + "/diffusion_pytorch_model.safetensors")
        try Data(ZipBuilder.checkpoint(pickle: p.bytes, storages: storages))
            .write(to: URL(fileURLWithPath: dir + "/diffusion_pytorch_model.bin"))
        let loaded = try AutoencoderKL.load(folder: dir)
        XCTAssertEqual(try model.encode(image()).mean.values, try loaded.encode(image()).mean.values)
    }

    func testLegacyAttentionNamesLoad() throws {
        let legacy = ["to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"]
        let (dir, model) = try writeFolder { tensors in
            tensors = tensors.map { key, t in
                var k = key
                for (new, old) in legacy where k.contains(".attentions.0.\(new).") {
                    k = k.replacingOccurrences(of: ".attentions.0.\(new).", with: ".attentions.0.\(old).")
                }
                // The original LDM layout stores the projections as 1x1 convolutions.
                return (k, k.hasSuffix("query.weight") ? t.reshaped([32, 32, 1, 1]) : t)
            }
        }
        let loaded = try AutoencoderKL.load(folder: dir)
        XCTAssertEqual(try model.encode(image()).mean.values, try loaded.encode(image()).mean.values)
    }

    func testMissingUnknownAndMisshapedTensorsAreErrors() throws {
        let (d1, _) = try writeFolder { $0.removeAll { $0.0 == "decoder.up_blocks.1.resnets.0.conv1.weight" } }
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d1)) { e in
            XCTAssertEqual(e as? WeightError, .missingKey(file: d1 + "/diffusion_pytorch_model.safetensors",
                                                          key: "decoder.up_blocks.1.resnets.0.conv1.weight"))
        }
        let (d2, _) = try writeFolder { $0.append(("encoder.extra.weight", Tensor(zeros: [2]))) }
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d2)) { e in
            XCTAssertEqual(e as? WeightError, .unexpectedKeys(file: d2 + "/diffusion_pytorch_model.safetensors",
                                                              keys: ["encoder.extra.weight"]))
        }
        let (d3, _) = try writeFolder { t in
            if let i = t.firstIndex(where: { $0.0 == "quant_conv.weight" }) { t[i].1 = Tensor(zeros: [8, 8, 3, 3]) }
        }
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d3)) { e in
            XCTAssertEqual(e as? WeightError, .shapeMismatch(file: d3 + "/diffusion_pytorch_model.safetensors",
                                                             key: "quant_conv.weight", expected: [8, 8, 1, 1], found: [8, 8, 3, 3]))
        }
        // A config that disagrees with the weights: wrong latent width.
        var c = VAELoadingTests.small
        c.latentChannels = 8
        let (d4, _) = try writeFolder()
        XCTAssertThrowsError(try AutoencoderKL.load(config: c, weights: SafeTensorsFile(path: d4 + "/diffusion_pytorch_model.safetensors")))
    }

    func testBadConfigsAndFoldersAreErrors() throws {
        let (d1, _) = try writeFolder(configJSON: #"{"block_out_channels": [32, 32], "down_block_types": ["CrossAttnDownBlock2D", "DownEncoderBlock2D"]}"#)
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d1)) { e in
            guard case .badConfig(let f, let reason)? = e as? VAEError else { return XCTFail("\(e)") }
            XCTAssertTrue(f.hasSuffix("config.json"))
            XCTAssertTrue(reason.contains("down_block_types"), reason)
        }
        let (d2, _) = try writeFolder(configJSON: #"{"block_out_channels": [30, 64]}"#)
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d2)) { XCTAssertTrue("\($0)".contains("norm_num_groups"), "\($0)") }
        let (d3, _) = try writeFolder(configJSON: "{not json")
        XCTAssertThrowsError(try AutoencoderKL.load(folder: d3)) { XCTAssertTrue("\($0)".contains("config.json"), "\($0)") }
        let empty = Fixtures.tempDir("vae-empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        try #"{"block_out_channels": [32]}"#.write(toFile: empty + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AutoencoderKL.load(folder: empty)) { XCTAssertEqual($0 as? VAEError, .noWeights(folder: empty)) }
        XCTAssertThrowsError(try AutoencoderKL.load(folder: empty + "/missing")) { XCTAssertTrue("\($0)".contains("/missing"), "\($0)") }
        // Corrupt weights file.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: empty + "/diffusion_pytorch_model.safetensors"))
        XCTAssertThrowsError(try AutoencoderKL.load(folder: empty)) { XCTAssertTrue("\($0)".contains("diffusion_pytorch_model"), "\($0)") }
    }

    func testBadInputsAreErrors() throws {
        let vae = try AutoencoderKL.load(config: VAELoadingTests.small, weights: RandomTensorSource.vae())
        XCTAssertThrowsError(try vae.encode(Tensor(zeros: [1, 4, 8, 8])))          // 4 channels
        XCTAssertThrowsError(try vae.encode(Tensor(zeros: [1, 3, 1, 8])))          // too small to down-sample
        XCTAssertThrowsError(try vae.encode(Tensor(zeros: [3, 8, 8])))             // rank 3
        XCTAssertThrowsError(try vae.decodeUnscaled(Tensor(zeros: [1, 3, 4, 4])))  // 3 latent channels
        XCTAssertThrowsError(try vae.decode(Tensor(zeros: [1, 4, 0, 4])))
        XCTAssertThrowsError(try vae.encode(Tensor(zeros: [0, 3, 8, 8])))          // empty batch
        let posterior = try vae.encode(image())
        XCTAssertThrowsError(try posterior.sample(eps: Tensor(zeros: [1, 4, 2, 2])))
        // Sizes beyond the pixel limit are refused before anything is allocated.
        let limited = try AutoencoderKL.load(config: VAELoadingTests.small, weights: RandomTensorSource.vae(),
                                        options: VAEOptions(maxPixels: 100))
        XCTAssertThrowsError(try limited.encode(image(1, 16))) { XCTAssertTrue("\($0)".contains("16x16"), "\($0)") }
        XCTAssertThrowsError(try limited.decode(Tensor(zeros: [1, 4, 8, 8])))
        XCTAssertNoThrow(try vae.encode(image(1, 16)))
    }

    func testPosteriorClampsLogvarAndSamples() throws {
        // moments: channel 0 = mean, channel 1 = logvar with values beyond both clamp bounds.
        let moments = Tensor(shape: [1, 2, 1, 4], values: [0.5, -1, 2, 0, -100, 50, 1, -30.5])
        let p = LatentDistribution(moments: moments)
        XCTAssertEqual(p.mean.values, [0.5, -1, 2, 0])
        XCTAssertEqual(p.logvar?.values, [-30, 20, 1, -30])
        XCTAssertEqual(p.std.values, [expf(-15), expf(10), expf(0.5), expf(-15)])
        XCTAssertEqual(p.mode().values, p.mean.values)
        let eps = Tensor(shape: [1, 1, 1, 4], values: [1, -1, 2, 0])
        XCTAssertEqual(try p.sample(eps: eps).values, [0.5 + expf(-15), -1 - expf(10), 2 + 2 * expf(0.5), 0])
        // The encoder's logvar is clamped too (random weights, an extreme input).
        let vae = try AutoencoderKL.load(config: VAELoadingTests.small, weights: RandomTensorSource.vae(seed: 2))
        let big = image()
        big.scaleInPlace(1e6)
        let lv = try XCTUnwrap(try vae.encode(big).logvar)
        XCTAssertTrue(lv.values.allSatisfy { (-30...20).contains($0) })
    }

    func testUInt8ConversionFollowsSampleDDP() {
        // clamp(127.5·x + 128, 0, 255) then truncation toward zero.
        let cases: [(Float, UInt8)] = [
            (-1, 0),          // 0.5 → 0 (truncated, not rounded)
            (1, 255),         // 255.5 → clamped to 255
            (0, 128),
            (-2, 0), (3, 255),
            (0.5, 191),       // 191.75 → 191
            (-0.5, 64),       // 64.25 → 64
            (-0.0039, 127),   // 127.502… → 127
            (Float.nan, 0),
        ]
        for (x, expected) in cases { XCTAssertEqual(SampleQuantizer.quantize(x), expected, "x = \(x)") }
        // NCHW → NHWC.
        let t = Tensor(shape: [1, 3, 1, 2], values: [-1, 1, 0, 0.5, -0.5, 1])
        XCTAssertEqual(SampleQuantizer.uint8NHWC(t), [0, 128, 64, 255, 191, 255])
    }

    func testIdentityAutoencoder() throws {
        let ae: Autoencoder = IdentityAutoencoder()
        XCTAssertEqual(ae.latentChannels, 3)
        XCTAssertEqual(ae.downsamplingFactor, 1)
        XCTAssertEqual(ae.latentShape(imageSize: 32), [3, 32, 32])
        let x = image(2, 4)
        let posterior = try ae.encode(x)
        XCTAssertNil(posterior.logvar)
        XCTAssertEqual(try posterior.sample(eps: Tensor(shape: x.shape, repeating: 1)).values, x.values)
        XCTAssertEqual(ae.scaled(posterior.mode()).values, x.values)
        XCTAssertEqual(try ae.decode(x).values, x.values)
        XCTAssertThrowsError(try ae.encode(Tensor(zeros: [1, 4, 2, 2])))
        // AutoencoderKL behind the same protocol.
        let kl: Autoencoder = try AutoencoderKL.load(config: VAELoadingTests.small, weights: RandomTensorSource.vae())
        XCTAssertEqual(kl.latentShape(imageSize: 16), [4, 8, 8])
        XCTAssertEqual(try kl.encode(image(1, 16)).mean.shape, [1, 4, 8, 8])
    }
}
