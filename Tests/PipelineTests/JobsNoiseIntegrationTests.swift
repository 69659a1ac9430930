import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineImaging
@testable import PipelineDiT
@testable import PipelineDiffusion
@testable import PipelineJobs

/// The `noise` kind through real processes: the tiny VAE encodes a small folder, then the
/// tiny DiT's losses are computed on noised latents by 1 and 2 workers and by the
/// single-process `dit-worker noise`.
final class JobsNoiseIntegrationTests: ProcessTestCase {
    func encodeFolder() throws -> String {
        let folder = dir + "/images"
        for (c, cls) in ["cat", "dog", "emu"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<2 {
                let pixels = (0..<(18 * 20 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (5 + i) &+ c * 70) }
                try PNGWriter.write(try ImageRGB8(width: 20, height: 18, pixels: pixels), to: "\(folder)/\(cls)/\(i).png")
            }
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(folder)/dog/0b.png"))   // image 3: recorded, not encoded
        let enc = dir + "/enc"
        let (status, log) = try runToEnd("dit-coordinator", [
            "run", "encode", "--folder", folder, "--vae", try Fixtures.require("vae/tiny"), "--out", enc, "--image-size", "16",
            "--images-per-shard", "4", "--seed", "3", "--flip", "--workers", "1", "--ledger", dir + "/enc.sqlite"])
        XCTAssertEqual(status, 0, log)
        return enc
    }

    func testNoiseWithOneAndTwoWorkersAndInProcessAgree() throws {
        let enc = try encodeFolder()
        let weights = try Fixtures.require("dit/tiny/weights.safetensors")
        let flags = ["--input", enc, "--draws", "2", "--seed", "9", "--flip", "--dit", weights, "--buckets", "5", "--items-per-shard", "3"]
        var trees: [[String: Data]] = []
        for workers in [1, 2] {
            let out = dir + "/noise\(workers)", ledger = dir + "/n\(workers).sqlite"
            let (status, log) = try runToEnd("dit-coordinator", ["run", "noise"] + flags + [
                "--out", out, "--workers", "\(workers)", "--ledger", ledger])
            XCTAssertEqual(status, 0, log)
            XCTAssertTrue(log.contains("losses per timestep bucket"), log)
            XCTAssertTrue(log.contains("[800, 1000)"), log)
            try assertExactlyOnce(ledger)
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0], trees[1], "1 and 2 workers write the same bytes")
        let (status, log) = try runToEnd("dit-worker", ["noise"] + flags + ["--out", dir + "/local", "--threads", "2"])
        XCTAssertEqual(status, 0, log)
        XCTAssertEqual(try tree(dir + "/local"), trees[0], "the single-process command writes the same bytes")
        // 7 images (one bad) in encode shards of 4 -> noise shards [0,3) [3,4) [4,7).
        XCTAssertEqual(Set(trees[0].keys), ["manifest.json", "losses.json", "shards/shard-000000.safetensors",
                                            "shards/shard-000001.safetensors", "shards/shard-000002.safetensors"])

        // Every row's losses are training_losses computed here from the encoded posterior.
        let rows = try NoiseRows(dir + "/noise1")
        XCTAssertEqual(rows.order.count, 6 * 2)
        let model = try DiT.load(path: weights, configFile: try Fixtures.require("dit/tiny/config.json"))
        let diffusion = try GaussianDiffusion.create(respacing: nil)
        let draws = try NoiseDraws(seed: 9, numTimesteps: 1000)
        let previous = Threads.count
        Threads.set(1)
        defer { Threads.set(previous) }
        var checked = 0
        var flips = Set<Bool>()
        for j in 0..<2 {
            let shard = try LatentShard.load(path: enc + "/" + EncodeManifest.shardPath(j), expected: nil, images: 0..<7)
            XCTAssertEqual(shard.scaling, LatentScaling(factor: 0.18215))
            let flipped = try XCTUnwrap(shard.flipped, "encode --flip stores the flipped posterior")
            for (r, i) in shard.index.enumerated() {
                for k in 0..<2 {
                    let row = try XCTUnwrap(rows.rows[[Int64(i), Int64(k)]], "item \(i) draw \(k)")
                    XCTAssertEqual(row.t, Int64(try draws.timestep(item: i, draw: k)))
                    XCTAssertEqual(row.y, Int64(shard.label[r]))
                    let flip = try draws.flipped(item: i, draw: k)
                    XCTAssertEqual(row.flip, flip ? 1 : 0)
                    flips.insert(flip)
                    let mean = flip ? flipped.mean : try XCTUnwrap(shard.mean), std = flip ? flipped.std : try XCTUnwrap(shard.std)
                    let x0 = Tensor(uninitialized: [1, 4, 8, 8])
                    try draws.resampledX0(x0.data, mean: mean.data + r * 256, std: std.data + r * 256, count: 256,
                                          scaling: LatentScaling(factor: 0.18215), item: i, draw: k)
                    let eps = try PhiloxNoise(seed: 9).normal(index: i, shape: [1, 4, 8, 8], purpose: .noisingEps, step: k)
                    XCTAssertEqual(row.eps, eps.values)
                    let terms = try diffusion.trainingLosses(xStart: x0, t: [Int(row.t)], noise: eps) {
                        try model.forward($0, t: $1, y: [Int(row.y)])
                    }
                    XCTAssertEqual(row.xT, terms.xT.values, "x_t of \(i), \(k)")
                    XCTAssertEqual(row.mse, terms.mse?[0], "mse of \(i), \(k)")
                    XCTAssertEqual(row.vb, terms.vb?[0], "vb of \(i), \(k)")
                    XCTAssertEqual(row.loss, terms.loss[0], "loss of \(i), \(k)")
                    checked += 1
                }
            }
        }
        XCTAssertEqual(checked, 12)
        XCTAssertEqual(flips, [false, true], "both the image and its flip are drawn")
        let report = try NoiseLossReport.load(dir + "/noise2/losses.json")
        XCTAssertEqual(report.overall.count, 12)
        XCTAssertEqual(report.buckets.count, 5)
    }

    /// A truncated latent shard fails its noise shards (not retried: the input cannot heal)
    /// with a reason naming the file; the other shards are written; the job ends partially failed.
    func testTruncatedLatentShardFailsOnlyItsShards() throws {
        let enc = dir + "/enc"
        try LatentSetBuilder(images: 7, imagesPerShard: 4, bad: [3]).write(to: enc)
        let bad = enc + "/" + EncodeManifest.shardPath(1)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: bad))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: bad))
        let out = dir + "/noise", ledger = dir + "/n.sqlite"
        let (status, log) = try runToEnd("dit-coordinator", [
            "run", "noise", "--input", enc, "--out", out, "--items-per-shard", "2", "--workers", "2", "--ledger", ledger])
        XCTAssertEqual(status, 2, log)
        XCTAssertTrue(log.contains(bad), log)
        XCTAssertTrue(log.contains("truncated"), log)
        let l = try Ledger(path: ledger)
        XCTAssertEqual(try l.jobState(1), .partiallyFailed)
        // Encode shard 0 holds images 0..<4 -> noise shards 0, 1; encode shard 1 (images 4..<7) -> shards 2, 3.
        let states = try l.shardCompletions(jobId: 1).sorted { $0.index < $1.index }.map(\.state)
        XCTAssertEqual(states, [.done, .done, .failed, .failed])
        XCTAssertEqual(try l.attempts(jobId: 1, shardIndex: 2).count, 1, "bad input is not retried")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/shards/shard-000000.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/shards/shard-000001.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/shards/shard-000002.safetensors"))
    }
}
