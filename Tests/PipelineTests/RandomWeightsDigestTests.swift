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

    // MARK: Independent record (issue 12 branch `randomweights`)

    /// SHA-256 over (rank, shape as int64s, float32 bytes) of each tensor, in order: a second
    /// record of the old initialisers' values, taken on its own from the per-module
    /// `init(random:)` code (and `RandomVAEParameters` / `RandomLayerWeights`) before they went.
    /// It covers what the digests above do not: the diffusers layout (its fused q|k|v draw),
    /// learn_sigma off, no null class, the benchmarks' Inception seed.
    static func shapeDigest(_ tensors: [Tensor]) -> String {
        var h = SHA256()
        for t in tensors {
            let header = [Int64(t.shape.count)] + t.shape.map(Int64.init)
            header.withUnsafeBytes { h.update($0) }
            h.update(UnsafeRawBufferPointer(start: t.data, count: t.count * MemoryLayout<Float>.size))
        }
        return h.finalizeHex()
    }

    /// A DiT's weights in module order (the attention's q|k|v as the model holds them, fused).
    static func moduleTensors(_ m: DiT) -> [Tensor] {
        func linear(_ l: DiTLinear) -> [Tensor] { [l.weight, l.bias] }
        func condition(_ c: ConditionEmbedder?) -> [Tensor] {
            c.map { linear($0.timestep.fc1) + linear($0.timestep.fc2) + [$0.label.table] } ?? []
        }
        var out = linear(m.xEmbedder.proj) + condition(m.condition)
        for b in m.blocks {
            out += linear(b.adaLN) + linear(b.attn.qkv) + linear(b.attn.proj) + linear(b.mlp.fc1) + linear(b.mlp.fc2)
            out += condition(b.condition)
        }
        return out + linear(m.finalLayer.adaLN) + linear(m.finalLayer.linear)
    }

    func testDiTRandomWeightsOfEveryLayoutAreUnchanged() throws {
        var s8 = DiTConfig(preset: .s8, inputSize: 8, numClasses: 10)
        s8.layout = .diffusers
        s8.mlpNormEps = 1e-5
        let cases: [(String, DiTConfig, UInt64, String)] = [
            ("DiT-S/2 learn_sigma", DiTConfig(preset: .s2, inputSize: 4), 0,
             "e9ffed98997a21b877173bfdb732b1e5f1ba37c383f0de2997ac7d8a4500f7fd"),
            ("DiT-S/4 no learn_sigma", DiTConfig(preset: .s4, inputSize: 8, numClasses: 10, learnSigma: false), 7,
             "8d4c49bcd21775325f5507263721520b030bb50e1134349ab55bf0dc536369a2"),
            ("reference, no null class", DiTConfig(inputSize: 8, patchSize: 2, inChannels: 3, hiddenSize: 64, depth: 2,
                                                   numHeads: 4, numClasses: 5, hasNullClass: false), 11,
             "32d3e7e4d09afdd48f744d911e944c37427f1d69f4ca6573426748ed5d667604"),
            ("diffusers", DiTConfig(inputSize: 8, patchSize: 2, inChannels: 4, hiddenSize: 64, depth: 3, numHeads: 4,
                                    numClasses: 6, layout: .diffusers, mlpNormEps: 1e-5), 3,
             "67c88e2b1a9b7926115eecb5fcefcdaf05c59fd0dec255ca66f163c6367dafc9"),
            // D = 384: to_k and to_v start inside a 2¹⁶-element chunk of the fused q|k|v draw.
            ("DiT-S/8 diffusers", s8, 1, "d67183411fafc9715d04f210c8828bac9fa04d778916ec8146c76dcb95b5780e"),
        ]
        for (name, config, seed, expected) in cases {
            let d = Self.shapeDigest(Self.moduleTensors(try DiT(randomWeights: config, seed: seed)))
            XCTAssertEqual(d, expected, "\(name) seed \(seed)")
        }
    }

    func testVAEAndInceptionRandomWeightsAreUnchangedByAnIndependentRecord() throws {
        let vae = AutoencoderKLConfig(blockOutChannels: [32, 64], layersPerBlock: 1, latentChannels: 4, scalingFactor: 0.18215)
        for (seed, expected) in [(UInt64(0), "3962acbba7d409ecdf659b0968e7fd2200174de4a1899a4c75ba4b295f1f250f"),
                                 (5, "c4b6b80213064ee0b1f7025debb1621a0847cc3a2fb2e836efcfa9978fe4acad")] {
            let p = RandomTensorSource.vae(seed: seed)
            _ = try AutoencoderKL.load(config: vae, weights: p)
            XCTAssertEqual(Self.shapeDigest(p.drawn.map(\.1)), expected, "VAE seed \(seed)")
        }
        for (seed, expected) in [(UInt64(0), "7fb0cabb7dd93f2c2e7c6136687142966e40389d2f17485a1238dbed85a7a8db"),
                                 (RandomTensorSource.inceptionBenchmarkSeed,
                                  "ecb7a4e93f52237cff90abcd04c680b2dacca8e7ea1a08d1e5372a570e07dd30")] {
            let r = RandomTensorSource.inception(seed: seed)
            _ = try FIDInceptionV3(source: r)
            XCTAssertEqual(Self.shapeDigest(r.drawn.map(\.1)), expected, "Inception seed \(seed)")
        }
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
