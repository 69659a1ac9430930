import Foundation
import XCTest
@testable import PipelineJobs

/// The coordinator state machine driven with in-process "workers" (no sockets).
final class JobsCoordinatorCoreTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("jobs-core") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func submit(_ ledger: Ledger, out: String, items: Int = 20, perShard: Int = 3, bad: [Int] = []) throws -> Int64 {
        let spec = try JobKinds.encode(SyntheticSpec(outputDir: out, items: items, itemsPerShard: perShard, seed: 42,
                                                     bytesPerItem: 40, badItems: bad))
        return try ledger.createJob(kind: "synthetic", spec: spec, plan: try SyntheticKind().plan(spec: spec))
    }

    /// Runs a job to the end with `workers` simulated workers, each with `credits` credits.
    func drive(_ core: CoordinatorCore<String>, workers: Int, credits: Int = 2) throws {
        let exec = SyntheticKind().makeExecutor()
        var queue: [(String, LeaseGrant)] = []
        for w in 0..<workers {
            _ = try core.handle(.hello("p\(w)", workerId: "w\(w)", host: "h", pid: w, threads: 1))
            queue += try core.handle(.request("p\(w)", credits: credits))
        }
        var rounds = 0
        while !queue.isEmpty {
            rounds += 1
            XCTAssertLessThan(rounds, 1000)
            let (peer, g) = queue.removeFirst()
            let r = try exec.execute(g.task, control: ShardControl())
            queue += try core.handle(.result(peer, ShardCompletion(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt,
                                                                   outputs: r.outputs, itemErrors: r.itemErrors, elapsed: 0.01,
                                                                   metrics: ["model_seconds": 0.25])))
            queue += try core.handle(.request(peer, credits: 1))
        }
        _ = try core.tick()
    }

    func testOneAndThreeWorkersGiveIdenticalOutputsAndExactlyOnce() throws {
        var trees: [[String: Data]] = []
        for workers in [1, 3] {
            let ledger = try Ledger(path: dir + "/l\(workers).sqlite")
            let core = CoordinatorCore<String>(ledger: ledger)
            let out = dir + "/out\(workers)"
            let job = try submit(ledger, out: out, bad: [5, 17])
            try drive(core, workers: workers)
            XCTAssertEqual(try ledger.jobState(job), .done)
            XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.doneAttempts), Array(repeating: 1, count: 7))
            XCTAssertEqual(try ledger.itemErrors(jobId: job).map(\.item), [5, 17])
            XCTAssertEqual(core.dispatched, 7)
            XCTAssertEqual(try ledger.doneMetrics(jobId: job)["model_seconds"], 7 * 0.25)
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0].count, 8)   // 7 shards + manifest
        XCTAssertEqual(trees[0], trees[1])
    }

    func testTamperedOutputIsRejectedAndRetried() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let out = dir + "/out"
        let job = try submit(ledger, out: out, items: 3, perShard: 3)
        _ = try core.handle(.hello("p", workerId: "w", host: "h", pid: 1, threads: 1))
        let g = try XCTUnwrap(core.handle(.request("p", credits: 1)).first?.1)
        let r = try SyntheticKind().makeExecutor().execute(g.task, control: ShardControl())
        // Reported sha256 does not match the file on disk.
        var bad = r.outputs
        bad[0].sha256 = String(repeating: "0", count: 64)
        let next = try core.handle(.result("p", ShardCompletion(jobId: job, shardId: g.shardId, attempt: 1, outputs: bad)))
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: 0).first?.outcome, .failed)
        XCTAssertTrue(try ledger.attempts(jobId: job, shardIndex: 0).first?.reason?.contains("sha256") ?? false)
        XCTAssertTrue(next.isEmpty, "the worker has no credit left")
        let g2 = try XCTUnwrap(core.handle(.request("p", credits: 1)).first?.1)
        XCTAssertEqual(g2.attempt, 2)
        // A file missing on the shared folder is rejected too.
        try FileManager.default.removeItem(atPath: out + "/" + r.outputs[0].path)
        _ = try core.handle(.result("p", ShardCompletion(jobId: job, shardId: g.shardId, attempt: 2, outputs: r.outputs)))
        XCTAssertTrue(try ledger.attempts(jobId: job, shardIndex: 0)[1].reason?.contains("unreadable") ?? false)
        XCTAssertEqual(try ledger.outputs(jobId: job), [])
    }

    func testDismissalDoesNotUseAnAttemptButDeathDoes() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let spec = try JobKinds.encode(SyntheticSpec(outputDir: dir + "/out", items: 2, itemsPerShard: 2))
        let job = try ledger.createJob(kind: "synthetic", spec: spec, plan: try SyntheticKind().plan(spec: spec), maxAttempts: 1)
        _ = try core.handle(.hello("a", workerId: "wa", host: "h", pid: 1, threads: 1))
        XCTAssertEqual(try core.handle(.request("a", credits: 1)).count, 1)
        _ = try core.handle(.dismissed("a"))
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.pending])
        _ = try core.handle(.hello("b", workerId: "wb", host: "h", pid: 2, threads: 1))
        XCTAssertEqual(try core.handle(.request("b", credits: 1)).first?.1.attempt, 2)
        _ = try core.handle(.gone("b", reason: "silent"))
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.failed], "one attempt allowed, used by the dead worker")
    }

    func testGoneWorkerReleasesItsLeasesToOthers() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let job = try submit(ledger, out: dir + "/out", items: 6, perShard: 3)
        _ = try core.handle(.hello("a", workerId: "wa", host: "h", pid: 1, threads: 1))
        _ = try core.handle(.hello("b", workerId: "wb", host: "h", pid: 2, threads: 1))
        let ga = try core.handle(.request("a", credits: 2))
        XCTAssertEqual(ga.count, 2)
        XCTAssertTrue(try core.handle(.request("b", credits: 1)).isEmpty)
        let gb = try core.handle(.gone("a", reason: "silent for 3 heartbeats"))
        XCTAssertEqual(gb.map(\.0), ["b"])
        XCTAssertEqual(gb.first?.1.attempt, 2)
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: 0).first?.outcome, .released)
        // A stale FAILED from the dead worker changes nothing.
        _ = try core.handle(.failed("a", jobId: job, shardId: ga[0].1.shardId, attempt: 1, reason: "x", retryable: true))
        XCTAssertEqual(core.ignored, 1)
        // After a restart, leases of workers that did not come back are released.
        let restarted = CoordinatorCore<String>(ledger: ledger)
        _ = try restarted.handle(.hello("c", workerId: "wc", host: "h", pid: 3, threads: 1))
        XCTAssertEqual(try ledger.leaseHolders(), ["wb"])
        _ = try restarted.releaseAbsentWorkers()
        XCTAssertEqual(try ledger.leaseHolders(), [])
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: 0).last?.outcome, .released)
        // Bad credit counts are dropped.
        XCTAssertTrue(try restarted.handle(.request("c", credits: -5)).isEmpty)
    }

    /// Reports are idempotent and each is owed an ACK: a re-sent RESULT for an attempt already
    /// done is a duplicate (nothing counted twice), one for a lease that moved on is stale, a
    /// re-sent FAILED is a duplicate; a coordinator restarted on the ledger accepts a RESULT
    /// for a lease it finds there.
    func testReportsAreAcknowledgedAndRepeatsCountOnce() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let job = try submit(ledger, out: dir + "/out", items: 9, perShard: 3)
        let exec = SyntheticKind().makeExecutor()
        func completion(_ g: LeaseGrant) throws -> ShardCompletion {
            let r = try exec.execute(g.task, control: ShardControl())
            return ShardCompletion(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt, outputs: r.outputs,
                                   itemErrors: r.itemErrors, elapsed: 0.01)
        }
        _ = try core.handle(.hello("a", workerId: "wa", host: "h", pid: 1, threads: 1))
        let g0 = try XCTUnwrap(core.handle(.request("a", credits: 1)).first?.1)
        let c0 = try completion(g0)
        _ = core.takeReportAcks()
        _ = try core.handle(.result("a", c0))
        XCTAssertEqual(core.takeReportAcks().map(\.verdict), [.recorded])
        // The same RESULT again (the worker never saw the ACK): acknowledged, not counted.
        _ = try core.handle(.result("a", c0))
        let again = core.takeReportAcks()
        XCTAssertEqual(again.map(\.verdict), [.duplicate])
        XCTAssertEqual(again.first.map { [$0.jobId, $0.shardId, Int64($0.attempt)] }, [job, g0.shardId, 1])
        XCTAssertEqual(core.accepted, 1)
        XCTAssertEqual(core.duplicates, 1)
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).first?.doneAttempts, 1)

        // A lease that moved on: worker a went silent, b got the shard; a's late RESULT is stale.
        let g1 = try XCTUnwrap(core.handle(.request("a", credits: 1)).first?.1)
        let c1 = try completion(g1)
        _ = try core.handle(.gone("a", reason: "silent"))
        _ = try core.handle(.hello("b", workerId: "wb", host: "h", pid: 2, threads: 1))
        let g1b = try XCTUnwrap(core.handle(.request("b", credits: 1)).first?.1)
        XCTAssertEqual(g1b.shardId, g1.shardId)
        _ = try core.handle(.hello("a2", workerId: "wa", host: "h", pid: 1, threads: 1))
        _ = core.takeReportAcks()
        _ = try core.handle(.result("a2", c1))
        XCTAssertEqual(core.takeReportAcks().map(\.verdict), [.stale])
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: g1.shardIndexForTest).map(\.outcome), [.released, .running])

        // A FAILED twice: recorded, then a duplicate.
        _ = try core.handle(.failed("b", jobId: job, shardId: g1b.shardId, attempt: g1b.attempt, reason: "disk full", retryable: true))
        _ = try core.handle(.failed("b", jobId: job, shardId: g1b.shardId, attempt: g1b.attempt, reason: "disk full", retryable: true))
        XCTAssertEqual(core.takeReportAcks().map(\.verdict), [.recorded, .duplicate])

        // A coordinator restarted on the ledger accepts a RESULT for a lease it finds there.
        let g2 = try XCTUnwrap(core.handle(.request("b", credits: 1)).first?.1)
        let c2 = try completion(g2)
        let restarted = CoordinatorCore<String>(ledger: ledger)
        _ = try restarted.handle(.hello("b2", workerId: "wb", host: "h", pid: 2, threads: 1))
        _ = try restarted.handle(.result("b2", c2))
        XCTAssertEqual(restarted.takeReportAcks().map(\.verdict), [.recorded])
        XCTAssertEqual(restarted.accepted, 1)
        // A tampered RESULT is rejected (and acknowledged as such).
        let g3 = try XCTUnwrap(restarted.handle(.request("b2", credits: 1)).first?.1)
        var c3 = try completion(g3)
        c3.outputs[0].sha256 = String(repeating: "0", count: 64)
        _ = try restarted.handle(.result("b2", c3))
        XCTAssertEqual(restarted.takeReportAcks().map(\.verdict), [.rejected])
    }
}

private extension LeaseGrant {
    var shardIndexForTest: Int { task.shardIndex }
}
