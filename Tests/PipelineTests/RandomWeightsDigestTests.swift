import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineDiT
@testable import PipelineVAE
@testable import PipelineInception

/// The random weights of every model, pinned by a SHA-256 over their tensors (shape, then the
/// float32 bytes, in the order the model takes them). Committed figures (the `random:0` proxy
/// FID, the demo's numbers, the benchmarks) depend on these exact values, so any change to the
/// draw order or the distributions fails here. The digests were recorded from the original
/// per-module `init(random:)` initialisers, before random weights moved behind the strict loader.
final class RandomWeightsDigestTests: XCTestCase {
    /// SHA-256 over (rank, shape, bytes) of each tensor added.
    final class Digest {
        private var sha = SHA256()
        func add(_ t: Tensor) {
            var header = [Int64(t.shape.count)] + t.shape.map(Int64.init)
            header.withUnsafeBytes { sha.update($0) }
            sha.update(UnsafeRawBufferPointer(start: t.data, count: t.count * MemoryLayout<Float>.size))
        }
        func add(_ l: DiTLinear) { add(l.weight); add(l.bias) }
        func add(_ c: ConditionEmbedder) { add(c.timestep.fc1); add(c.timestep.fc2); add(c.label.table) }
        var hex: String { sha.finalizeHex() }
    }

    /// Every weight of a DiT in module order (the fused qkv as loaded: to_q, to_k, to_v rows).
    static func digest(_ m: DiT) -> String {
        let d = Digest()
        d.add(m.xEmbedder.proj)
        if let c = m.condition { d.add(c) }
        for b in m.blocks {
            d.add(b.adaLN); d.add(b.attn.qkv); d.add(b.attn.proj); d.add(b.mlp.fc1); d.add(b.mlp.fc2)
            if let c = b.condition { d.add(c) }
        }
        d.add(m.finalLayer.adaLN); d.add(m.finalLayer.linear)
        return d.hex
    }

    func testDiTRandomWeights() throws {
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
            // D = 384: to_k and to_v start inside a 2¹⁶-element chunk of the fused qkv draw.
            ("DiT-S/8 diffusers", { () -> DiTConfig in
                var c = DiTConfig(preset: .s8, inputSize: 8, numClasses: 10)
                c.layout = .diffusers
                c.mlpNormEps = 1e-5
                return c
            }(), 1, "d67183411fafc9715d04f210c8828bac9fa04d778916ec8146c76dcb95b5780e"),
        ]
        for (name, config, seed, expected) in cases {
            let old = RandomWeightsDigestTests.digest(try DiT(randomWeights: config, seed: seed))
            let got = RandomWeightsDigestTests.digest(try DiT(config: config, weights: config.randomWeights(seed: seed)))
            print("DIGEST \(name) seed \(seed) old \(old)")
            XCTAssertEqual(got, old, "\(name) seed \(seed)")
            XCTAssertEqual(got, expected, "\(name) seed \(seed)")
        }
    }

    /// Records what a VAE takes, in order.
    final class VAERecorder: VAEParameters {
        let inner: VAEParameters, digest: Digest
        init(_ inner: VAEParameters, _ digest: Digest) { self.inner = inner; self.digest = digest }
        func child(_ name: String) -> VAEParameters { VAERecorder(inner.child(name), digest) }
        func has(_ key: String) -> Bool { inner.has(key) }
        func shape(_ key: String) -> [Int]? { inner.shape(key) }
        func take(_ key: String, shape: [Int]) throws -> Tensor {
            let t = try inner.take(key, shape: shape)
            digest.add(t)
            return t
        }
    }

    func testVAERandomWeights() throws {
        let small = AutoencoderKLConfig(blockOutChannels: [32, 64], layersPerBlock: 1, latentChannels: 4, scalingFactor: 0.18215)
        for (seed, expected) in [(UInt64(0), "3962acbba7d409ecdf659b0968e7fd2200174de4a1899a4c75ba4b295f1f250f"),
                                (5, "c4b6b80213064ee0b1f7025debb1621a0847cc3a2fb2e836efcfa9978fe4acad")] {
            let o = Digest()
            _ = try AutoencoderKL(config: small, parameters: VAERecorder(RandomVAEParameters(seed: seed), o))
            let old = o.hex
            print("DIGEST VAE seed \(seed) old \(old)")
            let d = Digest()
            let sd = StateDict(try AutoencoderKL.randomWeights(config: small, seed: seed))
            _ = try AutoencoderKL(config: small, parameters: VAERecorder(sd, d))
            try sd.finish()
            let got = d.hex
            XCTAssertEqual(got, old)
            XCTAssertEqual(got, expected, "VAE seed \(seed)")
        }
    }

    /// Records what an Inception takes, in order.
    final class InceptionRecorder: LayerWeights {
        let inner: LayerWeights, digest: Digest
        init(_ inner: LayerWeights, _ digest: Digest) { self.inner = inner; self.digest = digest }
        func take(_ key: String, shape: [Int]) throws -> Tensor {
            let t = try inner.take(key, shape: shape)
            digest.add(t)
            return t
        }
        func ignore(_ key: String) { inner.ignore(key) }
        func scoped(_ name: String) -> LayerWeights { InceptionRecorder(inner.scoped(name), digest) }
    }

    func testInceptionRandomWeights() throws {
        // Seed 0 is `random` / `random:0` (the proxy FID); 0x5EED is the benchmarks' model.
        for (seed, expected) in [(UInt64(0), "7fb0cabb7dd93f2c2e7c6136687142966e40389d2f17485a1238dbed85a7a8db"),
                                (0x5EED, "ecb7a4e93f52237cff90abcd04c680b2dacca8e7ea1a08d1e5372a570e07dd30")] {
            let o = Digest()
            _ = try FIDInceptionV3(weights: InceptionRecorder(RandomLayerWeights(seed: seed), o))
            let old = o.hex
            print("DIGEST Inception seed \(seed) old \(old)")
            let d = Digest()
            let sd = StateDict(try FIDInceptionV3.randomWeights(seed: seed))
            _ = try FIDInceptionV3(weights: InceptionRecorder(sd, d))
            try sd.finish()
            let got = d.hex
            XCTAssertEqual(got, old)
            XCTAssertEqual(got, expected, "Inception seed \(seed)")
        }
    }
}
