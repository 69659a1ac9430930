import Foundation
import XCTest
@testable import PipelineFiles

/// Sample jobs with diffusers schedulers through real processes: 1 and 3 workers give the same
/// bytes as the single-process `dit-worker sample`, and the recipe records the sampler's full
/// configuration and the guidance interval.
final class JobsSchedulerSampleIntegrationTests: ProcessTestCase {
    func check(sampler: String, steps: Int, extra: [String]) throws -> [String: Any] {
        let m = ["--dit", try Fixtures.require("dit/tiny/weights.safetensors"), "--num-samples", "6", "--seed", "4",
                 "--cfg-scale", "2", "--sampler", sampler, "--steps", "\(steps)", "--labels", "uniform", "--batch", "2"] + extra
        let (st, log) = try runToEnd("dit-worker", ["sample"] + m + ["--out", dir + "/\(sampler)-single"])
        XCTAssertEqual(st, 0, log)
        var trees: [[String: Data]] = []
        for workers in [1, 3] {
            let out = dir + "/\(sampler)-dist\(workers)"
            let ledger = dir + "/\(sampler)-l\(workers).sqlite"
            let (status, log) = try runToEnd("dit-coordinator", ["run", "sample"] + m
                + ["--out", out, "--samples-per-shard", "2", "--workers", "\(workers)", "--ledger", ledger])
            XCTAssertEqual(status, 0, log)
            try assertExactlyOnce(ledger)
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0], trees[1], sampler)
        for name in ["latents.npy", "labels.npy"] {
            XCTAssertEqual(trees[0][name], try Data(contentsOf: URL(fileURLWithPath: dir + "/\(sampler)-single/" + name)), "\(sampler) \(name)")
        }
        let recipe = try XCTUnwrap(trees[0]["latents.json"])
        let spec = try XCTUnwrap((try JSONSerialization.jsonObject(with: recipe) as? [String: Any])?["spec"] as? [String: Any])
        XCTAssertEqual(spec["sampler"] as? String, sampler)
        return spec
    }

    func testDPMSolverAndHeunJobsOneAndThreeWorkersIdentical() throws {
        let dpm = try check(sampler: "dpmpp2m", steps: 4, extra: [])
        let config = try XCTUnwrap(dpm["scheduler"] as? [String: Any])
        XCTAssertEqual(config["_class_name"] as? String, "DPMSolverMultistepScheduler")
        XCTAssertEqual(config["solver_order"] as? Int, 2)
        XCTAssertEqual(config["timestep_spacing"] as? String, "linspace")
        let heun = try check(sampler: "heun", steps: 3, extra: ["--cfg-interval", "0,600"])
        XCTAssertEqual((heun["scheduler"] as? [String: Any])?["_class_name"] as? String, "HeunDiscreteScheduler")
        XCTAssertEqual(heun["cfgInterval"] as? String, "0,600")
    }
}
