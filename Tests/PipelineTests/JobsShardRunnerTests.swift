import Foundation
import XCTest
@testable import PipelineJobs

/// Worker-side shard execution: outcomes, failure classification, abandonment.
final class JobsShardRunnerTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("jobs-runner") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func task(out: String, millis: Double = 0, kind: String = "synthetic") throws -> ShardTask {
        let spec = try JobKinds.encode(SyntheticSpec(outputDir: out, items: 10, itemsPerShard: 10, seed: 3, bytesPerItem: 8,
                                                     millisPerItem: millis, badItems: [4]))
        return ShardTask(kind: kind, jobId: 1, shardIndex: 0, itemStart: 0, itemEnd: 10, outputDir: out,
                         jobSpec: spec, shardSpec: Data("{}".utf8))
    }

    func testDoneReportsOutputsAndItemErrors() throws {
        let runner = ShardRunner()
        let t = try task(out: dir)
        guard case let .done(report, _) = runner.run(kind: "synthetic", payload: try JSONEncoder().encode(t)) else {
            return XCTFail("not done")
        }
        XCTAssertEqual(report.outputs.map(\.path), ["synthetic/shard-000000.bin"])
        XCTAssertEqual(report.outputs.first?.size, 72)   // 9 good items x 8 bytes
        XCTAssertEqual(report.itemErrors.map(\.item), [4])
        XCTAssertNil(OutputVerifier.verify(report.outputs, in: dir))
        // Bytes depend only on (seed, item).
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/synthetic/shard-000000.bin"))
        XCTAssertEqual(Array(data.prefix(8)), SyntheticSpec.itemBytes(seed: 3, item: 0, count: 8))
        XCTAssertEqual(Array(data[32..<40]), SyntheticSpec.itemBytes(seed: 3, item: 5, count: 8))
    }

    func testFailuresAreClassified() throws {
        let runner = ShardRunner()
        // Undecodable payload / unknown kind / kind mismatch: not retryable.
        guard case .failed(_, false) = runner.run(kind: "synthetic", payload: Data("nope".utf8)) else { return XCTFail() }
        guard case .failed(_, false) = runner.run(try task(out: dir, kind: "nope")) else { return XCTFail() }
        guard case .failed(_, false) = runner.run(kind: "noop", payload: try JSONEncoder().encode(try task(out: dir))) else {
            return XCTFail()
        }
        // Unwritable output folder (through a regular file): retryable, nothing left behind.
        FileManager.default.createFile(atPath: dir + "/blocker", contents: Data())
        guard case let .failed(reason, true) = runner.run(try task(out: dir + "/blocker/out")) else { return XCTFail() }
        XCTAssertTrue(reason.contains("blocker"), reason)
    }

    func testAbandonStopsARunningShardWithoutOutput() throws {
        let runner = ShardRunner()
        let t = try task(out: dir, millis: 50)
        let done = expectation(description: "shard ended")
        final class Box: @unchecked Sendable { var outcome: ShardRunner.Outcome? }
        let box = Box()
        DispatchQueue.global().async { box.outcome = runner.run(t); done.fulfill() }
        usleep(120_000)
        runner.abandonRunning()
        wait(for: [done], timeout: 5)
        let outcome = box.outcome
        guard case let .failed(reason, true) = outcome else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertTrue(reason.contains("abandoned"), reason)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/synthetic")) ?? []
        XCTAssertEqual(left, [], "no partial or temporary file remains")
    }
}
