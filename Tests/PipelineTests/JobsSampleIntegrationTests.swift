import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging

/// The `sample` kind through real processes, with the tiny DiT (and VAE) fixtures: sharded
/// runs equal the single-process `dit-worker sample` byte for byte, whatever the number of workers.
final class JobsSampleIntegrationTests: ProcessTestCase {
    func model(_ n: Int) throws -> [String] {
        ["--dit", try Fixtures.require("dit/tiny/weights.safetensors"), "--num-samples", "\(n)", "--seed", "3",
         "--cfg-scale", "1.5", "--sampler", "ddim", "--steps", "4", "--labels", "uniform", "--batch", "3"]
    }

    /// (a) 1 and 3 workers: identical outputs, and latents/labels equal to the single-process run.
    func testSampleLatentsOneAndThreeWorkersEqualSingleProcess() throws {
        let m = try model(10)
        let (st, log) = try runToEnd("dit-worker", ["sample"] + m + ["--out", dir + "/single"])
        XCTAssertEqual(st, 0, log)
        var trees: [[String: Data]] = []
        for workers in [1, 3] {
            let out = dir + "/dist\(workers)"
            let (status, log) = try runToEnd("dit-coordinator", ["run", "sample"] + m
                + ["--out", out, "--samples-per-shard", "3", "--workers", "\(workers)", "--ledger", dir + "/l\(workers).sqlite"])
            XCTAssertEqual(status, 0, log)
            try assertExactlyOnce(dir + "/l\(workers).sqlite")
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0], trees[1])
        for name in ["latents.npy", "labels.npy"] {
            XCTAssertEqual(trees[0][name], try Data(contentsOf: URL(fileURLWithPath: dir + "/single/" + name)), name)
        }
        XCTAssertNotNil(trees[0]["latents.json"])
    }

    /// (a) With the VAE: PNGs named by global index equal the single-process ones; the ADM
    /// batch .npz holds exactly those pixels and labels.
    func testSamplePNGsAndNPZWithVAE() throws {
        let vae = try Fixtures.require("vae/tiny")
        let m = try model(4) + ["--vae", vae]
        // Same thread count as the job's workers (1): the VAE decode's last bits depend on it
        // (the DiT + sampler latents do not).
        let (st, log) = try runToEnd("dit-worker", ["sample"] + m + ["--threads", "1", "--out", dir + "/single"], timeout: 120)
        XCTAssertEqual(st, 0, log)
        var trees: [[String: Data]] = []
        for workers in [1, 2] {
            let out = dir + "/dist\(workers)"
            let (status, log) = try runToEnd("dit-coordinator", ["run", "sample"] + m
                + ["--out", out, "--samples-per-shard", "2", "--workers", "\(workers)", "--ledger", dir + "/l\(workers).sqlite"],
                timeout: 120)
            XCTAssertEqual(status, 0, log)
            try assertExactlyOnce(dir + "/l\(workers).sqlite")
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0], trees[1])
        let labels = try NPY.read(dir + "/single/labels.npy").int64s()
        XCTAssertEqual(trees[0]["labels.npy"], try Data(contentsOf: URL(fileURLWithPath: dir + "/single/labels.npy")))
        let npz = try NPZFile(path: dir + "/dist1/samples_4x16x16x3.npz")
        let arr0 = try npz.array("arr_0")
        XCTAssertEqual(arr0.dtype, .uint8)
        XCTAssertEqual(arr0.shape, [4, 16, 16, 3])
        XCTAssertEqual(try npz.array("arr_1").int64s(), labels)
        for i in 0..<4 {
            let name = String(format: "%06d.png", i)
            XCTAssertEqual(trees[0][name], try Data(contentsOf: URL(fileURLWithPath: dir + "/single/" + name)), name)
            let img = try ImageDecoder.decode(path: dir + "/dist1/" + name)
            XCTAssertEqual(Array(arr0.data[(i * 768)..<((i + 1) * 768)]), img.pixels, "arr_0[\(i)]")
        }
        XCTAssertNotNil(trees[0]["samples_4x16x16x3.json"])
    }
}
