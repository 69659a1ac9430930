import Foundation
import XCTest
@testable import PipelineJobs

/// Real `dit-coordinator` and `dit-worker` processes on loopback. Each test is bounded to seconds.
final class JobsIntegrationTests: ProcessTestCase {
    // MARK: tests

    /// (a) One worker and three workers give byte-identical outputs.
    func testEmbeddedRunOneAndThreeWorkersByteIdentical() throws {
        var trees: [[String: Data]] = []
        for workers in [1, 3] {
            let spec = SyntheticSpec(outputDir: dir + "/out\(workers)", items: 60, itemsPerShard: 5, seed: 11,
                                     bytesPerItem: 1000, millisPerItem: 1, badItems: [7, 33])
            let ledger = dir + "/ledger\(workers).sqlite"
            let (status, log) = try runToEnd("dit-coordinator", ["run", "synthetic"] + syntheticArgs(spec)
                                             + ["--workers", "\(workers)", "--ledger", ledger])
            XCTAssertEqual(status, 0, log)
            XCTAssertTrue(log.contains("item errors: 2"), log)
            try assertExactlyOnce(ledger)
            trees.append(try tree(spec.outputDir))
        }
        XCTAssertEqual(trees[0].count, 13)
        XCTAssertEqual(trees[0], trees[1])
        let ref = SyntheticSpec(outputDir: "", items: 60, itemsPerShard: 5, seed: 11, bytesPerItem: 1000, badItems: [7, 33])
        XCTAssertEqual(trees[0], try reference(ref))
    }

    /// (b) SIGKILL of a worker mid-shard: its shard runs elsewhere; outputs identical, each shard done once.
    func testWorkerKilledMidShard() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 40, itemsPerShard: 5, seed: 5, bytesPerItem: 500,
                                 millisPerItem: 40)
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)"] + hb)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let victim = try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"] + hb)
        try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"] + hb)
        let l = try Ledger(path: ledger)
        // Kill the first worker while it holds a lease.
        try waitFor("the victim to hold a lease", timeout: 10) {
            try l.leaseHolders().contains { $0.hasSuffix("-\(victim.processIdentifier)") }
        }
        kill(victim.processIdentifier, SIGKILL)
        try waitFor("the job to finish", timeout: 30) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        let all = try (0..<8).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }
        XCTAssertTrue(all.contains { $0.outcome == .released && $0.worker.hasSuffix("-\(victim.processIdentifier)") },
                      "the killed worker's lease was released: \(all)")
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// (b) SIGKILL + restart of the coordinator mid-job: the job resumes, nothing done is redone.
    func testCoordinatorKilledAndRestarted() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 80, itemsPerShard: 5, seed: 9, bytesPerItem: 300,
                                 millisPerItem: 40)
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        let serve = ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)"] + hb
        let coordinator = try start("dit-coordinator", serve)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec)
                                    + ["--ledger", ledger, "--lease-seconds", "4"]).0, 0)
        for _ in 0..<2 { try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"] + hb) }
        let l = try Ledger(path: ledger)
        try waitFor("some shards done", timeout: 15) { try l.shardCompletions(jobId: 1).filter { $0.state == .done }.count >= 3 }
        kill(coordinator.processIdentifier, SIGKILL)
        coordinator.waitUntilExit()
        let doneBefore = try l.shardCompletions(jobId: 1).filter { $0.state == .done }.map(\.index)
        XCTAssertLessThan(doneBefore.count, 16, "killed mid-job")
        usleep(300_000)
        try start("dit-coordinator", serve)
        try waitFor("the job to finish", timeout: 40) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        for i in doneBefore {
            XCTAssertEqual(try l.attempts(jobId: 1, shardIndex: i).filter { $0.outcome == .done }.count, 1)
        }
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// An unwritable output path: the shard fails with the reason after its attempts, nothing is
    /// recorded; once the path is fixed, re-running `run` resumes and retries it.
    func testUnwritableOutputFailsWithReasonThenResumeSucceeds() throws {
        let ledger = dir + "/ledger.sqlite"
        FileManager.default.createFile(atPath: dir + "/blocker", contents: Data("x".utf8))
        let spec = SyntheticSpec(outputDir: dir + "/blocker/out", items: 10, itemsPerShard: 5, seed: 1, bytesPerItem: 10)
        let args = ["run", "synthetic"] + syntheticArgs(spec) + ["--workers", "2", "--ledger", ledger, "--max-attempts", "2"]
        let (status, log) = try runToEnd("dit-coordinator", args)
        XCTAssertEqual(status, 2, log)
        XCTAssertTrue(log.contains("partially_failed"), log)
        XCTAssertTrue(log.contains("exists and is not a folder"), log)
        let l = try Ledger(path: ledger)
        XCTAssertEqual(try l.jobState(1), .partiallyFailed)
        XCTAssertEqual(try l.outputs(jobId: 1), [])
        XCTAssertEqual(try l.attempts(jobId: 1, shardIndex: 0).map(\.outcome), [.failed, .failed])
        // Fix the path and re-run: the failed shards are retried and the job completes.
        try FileManager.default.removeItem(atPath: dir + "/blocker")
        let (status2, log2) = try runToEnd("dit-coordinator", args)
        XCTAssertEqual(status2, 0, log2)
        XCTAssertTrue(log2.contains("resuming job 1"), log2)
        try assertExactlyOnce(ledger)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// SIGTERM: the worker abandons its shard, reports it, says DISCONNECT and exits; the shard is redone.
    func testWorkerSigtermAbandonsAndReports() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 20, itemsPerShard: 10, seed: 2, bytesPerItem: 10,
                                 millisPerItem: 100)
        try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)"])
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let w = try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"])
        let l = try Ledger(path: ledger)
        try waitFor("a lease", timeout: 10) { !(try l.leaseHolders().isEmpty) }
        usleep(200_000)
        w.terminate()
        try waitFor("the worker to exit", timeout: 5) { !w.isRunning }
        XCTAssertEqual(w.terminationStatus, 0)
        let first = try l.attempts(jobId: 1, shardIndex: 0)
        XCTAssertEqual(first.first?.outcome, .failed)
        XCTAssertTrue(first.first?.reason?.contains("abandoned") ?? false, "\(first)")
        try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"])
        try waitFor("the job to finish", timeout: 20) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
    }
}
