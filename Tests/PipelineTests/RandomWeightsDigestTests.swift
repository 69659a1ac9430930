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
            let p = RandomVAEParameters(seed: seed)
            _ = try AutoencoderKL(config: config, parameters: p)
            let d = Self.digest(p.tensors)
            print("VAE \(name): \(d)")
            XCTAssertEqual(d, expected, name)
        }
    }

    final class Recording: LayerWeights {
        let inner = RandomLayerWeights(seed: 0)
        let prefix: String
        let root: Recording?
        var drawn: [(String, Tensor)] = []
        init(prefix: String = "", root: Recording? = nil) { self.prefix = prefix; self.root = root }
        func take(_ key: String, shape: [Int]) throws -> Tensor {
            let t = try (root ?? self).inner.take(key, shape: shape)
            let r = root ?? self
            r.drawn.append((prefix + key, t))
            return t
        }
        func ignore(_ key: String) {}
        func scoped(_ name: String) -> LayerWeights { Recording(prefix: prefix + name + ".", root: root ?? self) }
    }

    func testInceptionRandomWeightsAreUnchanged() throws {
        let r = Recording()
        _ = try FIDInceptionV3(weights: r)
        let d = Self.digest(r.drawn)
        print("Inception random:0: \(d)")
        XCTAssertEqual(d, "eae4e9f34fbc1ad7babd5fe52d9c7b9c460e7d774360dc8a1690f7697a2177ca")
    }
}
