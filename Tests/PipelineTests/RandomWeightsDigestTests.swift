import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineDiT
@testable import PipelineVAE
@testable import PipelineInception
@testable import PipelineTraining

/// Random weights are part of published figures: the FIDs of the `random:0` proxy Inception,
/// the training runs that start from `DiT(randomWeights:)`, the benchmarks. These digests
/// (SHA-256 over every key and its float32 bytes, in load order) were taken from the
/// random initialisers before random weights moved behind the strict loader
/// (`RandomTensorSource`), and pin the values for good.
final class RandomWeightsDigestTests: XCTestCase {
    static func digest(_ tensors: [(String, Tensor)]) -> String {
        var h = SHA256()
        for (k, t) in tensors {
            h.update(Data(k.utf8))
            h.update(UnsafeRawBufferPointer(start: t.data, count: t.count * MemoryLayout<Float>.size))
        }
        return h.finalizeHex()
    }

    func ditDigest(_ config: DiTConfig, seed: UInt64) throws -> String {
        let model = try DiT(randomWeights: config, seed: seed)
        return Self.digest(try TrainableDiT(model).parameters.map { ($0.name, $0.value) })
    }

    func testDiTRandomWeightsAreUnchanged() throws {
        let shapes = DiTConfig(inputSize: 32, patchSize: 4, inChannels: 3, hiddenSize: 96, depth: 4, numHeads: 4,
                               numClasses: 4)
        var mse = shapes
        mse.learnSigma = false
        let cases: [(String, DiTConfig, UInt64, String)] = [
            ("DiT-S/2", DiTConfig(preset: .s2, inputSize: 32), 0, "b917ce6313dfb12b6199c70293e743f34c762272ab96fb8c61262035263e561f"),
            ("shapes", shapes, 0, "a5486777e2c173b71d55744aebd5f50bcc9b1ae74586db63642adeef14175867"),
            ("shapes MSE seed 7", mse, 7, "3fba9496491fb08d17cf8c2eb5287212cb9139d5a5820413e1170ea2f665b788"),
        ]
        for (name, config, seed, expected) in cases {
            let d = try ditDigest(config, seed: seed)
            print("DiT \(name): \(d)")
            XCTAssertEqual(d, expected, name)
        }
    }

    func testVAERandomWeightsAreUnchanged() throws {
        for (name, config, seed, expected) in [
            ("small seed 5", AutoencoderKLConfig(blockOutChannels: [32, 32], layersPerBlock: 1, latentChannels: 4,
                                                 scalingFactor: 0.18215), UInt64(5),
             "c8eb54759027702d0dfd6ec3dff40c0856b6a10a7accc88d8547046138a796e2"),
            ("SD kl-f8 seed 0", AutoencoderKLConfig.stableDiffusion, UInt64(0),
             "d6808325e1772e22201259bc1903ccdefe4ad8ef484de85251d3bd4527b50c89"),
        ] {
            let p = RandomTensorSource.vae(seed: seed)
            _ = try AutoencoderKL.load(config: config, weights: p)
            let d = Self.digest(p.drawn)
            print("VAE \(name): \(d)")
            XCTAssertEqual(d, expected, name)
        }
    }

    func testInceptionRandomWeightsAreUnchanged() throws {
        let r = RandomTensorSource.inception(seed: 0)
        _ = try FIDInceptionV3(source: r)
        let d = Self.digest(r.drawn)
        print("Inception random:0: \(d)")
        XCTAssertEqual(d, "eae4e9f34fbc1ad7babd5fe52d9c7b9c460e7d774360dc8a1690f7697a2177ca")
    }

    /// The random source behind the strict loader: a key is drawn once and served again; asked
    /// again with another shape, or without a shape, it names the key.
    func testRandomSourceServesOneTensorPerKeyAndNamesBadRequests() throws {
        let source = RandomTensorSource.dit(seed: 3)
        let sd = StateDict(source)
        let a = try sd.take("blocks.0.attn.qkv.weight", shape: [6, 2])
        let b = try sd.scope("blocks.0").take("attn.qkv.weight", shape: [6, 2])
        XCTAssertEqual(a.values, b.values)
        XCTAssertEqual(source.drawn.map(\.0), ["blocks.0.attn.qkv.weight"])
        XCTAssertThrowsError(try sd.take("blocks.0.attn.qkv.weight", shape: [2, 6])) {
            XCTAssertTrue("\($0)".contains("blocks.0.attn.qkv.weight"), "\($0)")
        }
        XCTAssertThrowsError(try sd.take("pos_embed")) { XCTAssertTrue("\($0)".contains("pos_embed"), "\($0)") }
        XCTAssertFalse(sd.has("pos_embed"))
        XCTAssertNoThrow(try sd.finish())
        // Both key layouts load from it (the diffusers one asks for to_q, to_k, to_v).
        var diffusers = DiTConfig(inputSize: 8, patchSize: 2, inChannels: 4, hiddenSize: 32, depth: 2, numHeads: 2,
                                  numClasses: 3, layout: .diffusers)
        diffusers.mlpNormEps = 1e-5
        let model = try DiT(randomWeights: diffusers, seed: 1)
        let out = try model.forward(Tensor(zeros: [1, 4, 8, 8]), t: [10], y: [1])
        XCTAssertEqual(out.shape, [1, 8, 8, 8])
        XCTAssertTrue(out.values.allSatisfy(\.isFinite))
    }
}
