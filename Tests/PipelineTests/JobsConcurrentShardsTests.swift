import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging

/// Several shards of one worker at once (`--credits 3`: three pool threads sharing the
/// worker's executors, their cached models and the models' workspaces): sample (DiT + VAE),
/// encode (VAE) and noise (DiT) jobs give the same bytes as with `--credits 1`.
/// Also the job of the ThreadSanitizer run (see the README, "Thread safety").
final class JobsConcurrentShardsTests: ProcessTestCase {
    /// Runs `dit-coordinator run KIND FLAGS` with one worker and `credits` credits; the output tree.
    private func run(_ kind: String, _ flags: [String], credits: Int, name: String) throws -> [String: Data] {
        let out = dir + "/\(name)-c\(credits)", ledger = dir + "/\(name)-c\(credits).sqlite"
        let (status, log) = try runToEnd("dit-coordinator", ["run", kind] + flags
            + ["--out", out, "--workers", "1", "--threads", "1", "--credits", "\(credits)", "--ledger", ledger], timeout: 180)
        XCTAssertEqual(status, 0, log)
        try assertExactlyOnce(ledger)
        return try tree(out)
    }

    private func sameBytes(_ a: [String: Data], _ b: [String: Data], _ what: String) {
        XCTAssertFalse(a.isEmpty, what)
        XCTAssertEqual(Set(a.keys), Set(b.keys), what)
        for (name, data) in a where b[name] != data { XCTFail("\(what): \(name) differs between --credits 1 and 3") }
    }

    func testSampleEncodeAndNoiseShardsRunConcurrently() throws {
        let dit = try Fixtures.require("dit/tiny/weights.safetensors"), vae = try Fixtures.require("vae/tiny")
        // sample: 6 samples, 1 per shard, decoded by the VAE (PNGs, the ADM .npz).
        let sample = ["--dit", dit, "--vae", vae, "--num-samples", "6", "--seed", "3", "--cfg-scale", "1.5",
                      "--sampler", "ddim", "--steps", "3", "--labels", "uniform", "--batch", "1", "--samples-per-shard", "1"]
        sameBytes(try run("sample", sample, credits: 1, name: "sample"), try run("sample", sample, credits: 3, name: "sample"), "sample")

        // encode: 9 images, 2 per shard, with flips.
        let folder = dir + "/images"
        for (c, cls) in ["cat", "dog", "fox"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<3 {
                let pixels = (0..<(16 * 16 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (5 + i) &+ c * 70) }
                try PNGWriter.write(try ImageRGB8(width: 16, height: 16, pixels: pixels), to: "\(folder)/\(cls)/\(i).png")
            }
        }
        let encode = ["--folder", folder, "--vae", vae, "--image-size", "16", "--flip", "--images-per-shard", "2",
                      "--batch", "2", "--seed", "5"]
        let encoded = try run("encode", encode, credits: 1, name: "encode")
        sameBytes(encoded, try run("encode", encode, credits: 3, name: "encode"), "encode")

        // noise: the encoded latents, 2 draws, losses from the DiT, 2 images per shard.
        let noise = ["--input", dir + "/encode-c1", "--dit", dit, "--draws", "2", "--seed", "7", "--items-per-shard", "2"]
        sameBytes(try run("noise", noise, credits: 1, name: "noise"), try run("noise", noise, credits: 3, name: "noise"), "noise")
    }
}
