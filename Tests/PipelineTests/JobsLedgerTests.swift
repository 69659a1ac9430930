import Foundation
import GRDB
import XCTest
@testable import PipelineFiles
@testable import PipelineJobs

/// The ledger and the coordinator state machine, without sockets.
final class JobsLedgerTests: XCTestCase {
    var dir = ""
    var now = 1_000_000.0

    override func setUp() { dir = Fixtures.tempDir("jobs-ledger") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func makeLedger(_ name: String = "ledger.sqlite") throws -> Ledger {
        let l = try Ledger(path: dir + "/" + name)
        l.clock = { [unowned self] in self.now }
        return l
    }

    func syntheticJob(_ ledger: Ledger, items: Int = 10, perShard: Int = 4, maxAttempts: Int = 3,
                      bad: [Int] = [], out: String? = nil) throws -> (Int64, Data) {
        let spec = try JobKinds.encode(SyntheticSpec(outputDir: out ?? dir + "/out", items: items, itemsPerShard: perShard,
                                                     seed: 7, bytesPerItem: 16, badItems: bad))
        let plan = try SyntheticKind().plan(spec: spec)
        return (try ledger.createJob(kind: "synthetic", spec: spec, plan: plan, maxAttempts: maxAttempts, leaseSeconds: 30), spec)
    }

    func run(_ grant: LeaseGrant) throws -> ShardCompletion {
        let r = try SyntheticKind().makeExecutor().execute(grant.task, control: ShardControl())
        return ShardCompletion(jobId: grant.jobId, shardId: grant.shardId, attempt: grant.attempt,
                               outputs: r.outputs, itemErrors: r.itemErrors, elapsed: 0.5)
    }

    // MARK: SHA-256 and output files

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        XCTAssertEqual(SHA256.hex(long), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd chunks equals one shot.
        let bytes = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var h = SHA256()
        var i = 0
        for n in [1, 63, 64, 65, 7, 300, 500] { let e = min(i + n, bytes.count); h.update(bytes[i..<e]); i = e }
        XCTAssertEqual(h.finalizeHex(), SHA256.hex(bytes))
    }

    func testOutputWriterIsAtomicAndReportsDigest() throws {
        let d = try OutputFileWriter.write(Data("hello".utf8), to: dir + "/a/b.txt", relativeTo: dir)
        XCTAssertEqual(d, FileDigest(path: "a/b.txt", size: 5, sha256: SHA256.hex(Data("hello".utf8))))
        // An unwritable destination (a path through a regular file) throws and leaves nothing.
        XCTAssertThrowsError(try OutputFileWriter.write(Data("x".utf8), to: dir + "/a/b.txt/c", relativeTo: dir)) { e in
            XCTAssertTrue("\(e)".contains("b.txt"), "\(e)")
        }
        let w = try OutputFileWriter(path: dir + "/a/partial.bin")
        try w.write(Data(count: 100))
        w.abandon()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/a"), ["b.txt"])
    }

    // MARK: ledger transitions

    func testLeaseCompleteExactlyOnceAndStaleReportsIgnored() throws {
        let ledger = try makeLedger()
        let (job, _) = try syntheticJob(ledger)
        try ledger.workerSeen(id: "w1", host: "h", pid: 1, threads: 1)
        let g = try XCTUnwrap(ledger.leaseNext(workerId: "w1"))
        XCTAssertEqual(g.task.shardIndex, 0)
        XCTAssertEqual(g.attempt, 1)
        XCTAssertEqual(g.task.itemStart..<g.task.itemEnd, 0..<4)
        let c = try run(g)
        // Wrong attempt, wrong job, wrong worker: stale, nothing recorded.
        var wrong = c; wrong.attempt = 2
        XCTAssertEqual(try ledger.complete(wrong, workerId: "w1"), .stale("no current lease for job \(job) shard \(g.shardId) attempt 2"))
        wrong = c; wrong.jobId = job + 1
        if case .stale = try ledger.complete(wrong, workerId: "w1") {} else { XCTFail("other job accepted") }
        if case .stale = try ledger.complete(c, workerId: "w2") {} else { XCTFail("other worker accepted") }
        XCTAssertEqual(try ledger.complete(c, workerId: "w1"), .accepted)
        // A duplicate RESULT is stale.
        if case .stale = try ledger.complete(c, workerId: "w1") {} else { XCTFail("duplicate accepted") }
        let comps = try ledger.shardCompletions(jobId: job)
        XCTAssertEqual(comps.map(\.state), [.done, .pending, .pending])
        XCTAssertEqual(comps.map(\.doneAttempts), [1, 0, 0])
        XCTAssertEqual(try ledger.outputs(jobId: job).map(\.path), ["synthetic/shard-000000.bin"])
    }

    func testLeaseExpiryRequeuesWithNextAttemptAndLateResultIsStale() throws {
        let ledger = try makeLedger()
        let (job, _) = try syntheticJob(ledger, items: 4)
        let g1 = try XCTUnwrap(ledger.leaseNext(workerId: "w1"))
        XCTAssertNil(try ledger.leaseNext(workerId: "w2"), "only shard is leased")
        now += 29
        XCTAssertEqual(try ledger.expireLeases(), [])
        XCTAssertEqual(try ledger.leaseHolders(), ["w1"])
        now += 2
        let expired = try ledger.expireLeases()
        XCTAssertEqual(expired, [ExpiredLease(jobId: job, shardId: g1.shardId, attempt: 1, workerId: "w1", shardFailed: false)])
        let g2 = try XCTUnwrap(ledger.leaseNext(workerId: "w2"))
        XCTAssertEqual(g2.shardId, g1.shardId)
        XCTAssertEqual(g2.attempt, 2)
        // The first worker comes back late: ignored.
        if case .stale = try ledger.complete(try run(g1), workerId: "w1") {} else { XCTFail("late result accepted") }
        XCTAssertEqual(try ledger.complete(try run(g2), workerId: "w2"), .accepted)
        let tries = try ledger.attempts(jobId: job, shardIndex: 0)
        XCTAssertEqual(tries.map(\.outcome), [.expired, .done])
        XCTAssertEqual(tries.map(\.worker), ["w1", "w2"])
    }

    func testMaxAttemptsFailsShardJobPartiallyFailsThenRetrySucceeds() throws {
        let ledger = try makeLedger()
        let (job, _) = try syntheticJob(ledger, items: 8, perShard: 4, maxAttempts: 2)
        let core = CoordinatorCore<String>(ledger: ledger)
        // Shard 0 fails twice (retryable), shard 1 succeeds.
        let a = try XCTUnwrap(ledger.leaseNext(workerId: "w1"))
        let b = try XCTUnwrap(ledger.leaseNext(workerId: "w1"))
        XCTAssertEqual(try ledger.fail(jobId: job, shardId: a.shardId, attempt: 1, workerId: "w1", reason: "disk full",
                                       retryable: true), .retrying)
        XCTAssertEqual(try ledger.complete(try run(b), workerId: "w1"), .accepted)
        let a2 = try XCTUnwrap(ledger.leaseNext(workerId: "w1"))
        XCTAssertEqual(a2.attempt, 2)
        XCTAssertEqual(try ledger.fail(jobId: job, shardId: a.shardId, attempt: 2, workerId: "w1", reason: "disk full",
                                       retryable: true), .shardFailed)
        XCTAssertNil(try ledger.leaseNext(workerId: "w1"))
        try core.settleJobs()
        XCTAssertEqual(try ledger.jobState(job), .partiallyFailed)
        let report = try JobStatusReport.load(ledger: ledger, jobId: job)
        XCTAssertEqual(report.jobs.first?.failedShards, 1)
        XCTAssertTrue(report.render().contains("disk full (after 2 attempts)"), report.render())
        XCTAssertTrue(report.render().contains("partially_failed"), report.render())
        // Finalize did not run for a partial job.
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/synthetic/manifest.json"))

        XCTAssertEqual(try ledger.retry(job), 1)
        XCTAssertEqual(try ledger.jobState(job), .running)
        let a3 = try XCTUnwrap(ledger.leaseNext(workerId: "w2"))
        XCTAssertEqual(a3.attempt, 3)
        XCTAssertEqual(try ledger.complete(try run(a3), workerId: "w2"), .accepted)
        try core.settleJobs()
        XCTAssertEqual(try ledger.jobState(job), .done)
        XCTAssertEqual(try ledger.outputs(jobId: job).map(\.path),
                       ["synthetic/manifest.json", "synthetic/shard-000000.bin", "synthetic/shard-000001.bin"])
        // Finalize runs once: a second settle finds nothing to do.
        try core.settleJobs()
        XCTAssertEqual(try ledger.jobState(job), .done)
    }

    func testNonRetryableFailureFailsAtOnce() throws {
        let ledger = try makeLedger()
        let (job, _) = try syntheticJob(ledger, items: 4, maxAttempts: 5)
        let g = try XCTUnwrap(ledger.leaseNext(workerId: "w"))
        XCTAssertEqual(try ledger.fail(jobId: job, shardId: g.shardId, attempt: 1, workerId: "w", reason: "bad spec",
                                       retryable: false), .shardFailed)
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.failed])
    }

    func testCancelMakesResultsStaleAndStopsDispatch() throws {
        let ledger = try makeLedger()
        let (job, _) = try syntheticJob(ledger)
        let g = try XCTUnwrap(ledger.leaseNext(workerId: "w"))
        try ledger.cancel(job)
        XCTAssertEqual(try ledger.jobState(job), .cancelled)
        if case .stale = try ledger.complete(try run(g), workerId: "w") {} else { XCTFail("result of a cancelled job accepted") }
        XCTAssertNil(try ledger.leaseNext(workerId: "w"))
        XCTAssertThrowsError(try ledger.cancel(999))
        // retry resumes a cancelled job.
        try ledger.retry(job)
        XCTAssertNotNil(try ledger.leaseNext(workerId: "w"))
    }

    func testLedgerSurvivesReopenAndResumes() throws {
        var ledger: Ledger? = try makeLedger()
        let (job, spec) = try syntheticJob(ledger!)
        let g = try XCTUnwrap(ledger!.leaseNext(workerId: "w"))
        XCTAssertEqual(try ledger!.complete(try run(g), workerId: "w"), .accepted)
        let g2 = try XCTUnwrap(ledger!.leaseNext(workerId: "w"))
        ledger = nil   // "killed": the open lease stays in the ledger
        let again = try makeLedger()
        XCTAssertEqual(try again.findJob(kind: "synthetic", spec: spec, outputDir: dir + "/out"), job)
        XCTAssertEqual(try again.shardCompletions(jobId: job).map(\.state), [.done, .leased, .pending])
        // The lease is still honoured after the restart.
        XCTAssertEqual(try again.complete(try run(g2), workerId: "w"), .accepted)
    }

    func testOlderLedgerIsMigratedInPlace() throws {
        let path = dir + "/old.sqlite"
        do {
            let q = try DatabaseQueue(path: path)
            try LedgerSchema.migrator.migrate(q, upTo: "v1: jobs, shards, attempts, leases, workers, outputs, item errors")
            try q.write { db in
                try db.execute(sql: """
                    INSERT INTO jobs (kind, spec, output_dir, state, total_shards, total_items, max_attempts, lease_seconds, created_at)
                    VALUES ('noop', '{}', '/x', 'running', 0, 0, 3, 60, 0)
                    """)
            }
        }
        let ledger = try Ledger(path: path)
        XCTAssertEqual(try ledger.jobState(1), .running)
        XCTAssertEqual(try ledger.doneMetrics(jobId: 1), [:])
        try ledger.read { db in XCTAssertTrue(try db.columns(in: "attempts").contains { $0.name == "metrics" }) }
    }

    /// A ledger whose schema has a migration this build does not know was written by a newer
    /// version: refused with a clear error, and left as it was.
    func testLedgerOfANewerVersionIsRefused() throws {
        let path = dir + "/newer.sqlite"
        _ = try Ledger(path: path)
        do {
            let q = try DatabaseQueue(path: path)
            try q.write { db in
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')")
            }
        }
        XCTAssertThrowsError(try Ledger(path: path)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("written by a newer version") && text.contains("v99: from the future"), text)
        }
        let q = try DatabaseQueue(path: path)
        XCTAssertEqual(try q.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations") }.count, 4)
    }

    func testBadSpecsAreClearErrors() {
        XCTAssertThrowsError(try SyntheticKind().plan(spec: Data("{".utf8))) { e in
            guard case JobError.badSpec(let kind, _) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(kind, "synthetic")
        }
        let zero = try! JobKinds.encode(SyntheticSpec(outputDir: "/tmp/x", items: 0, itemsPerShard: 1))
        XCTAssertThrowsError(try SyntheticKind().plan(spec: zero))
        XCTAssertThrowsError(try JobKinds.named("nope")) { XCTAssertEqual($0 as? JobError, .unknownKind("nope")) }
        XCTAssertEqual(JobKinds.ranges(items: 10, perShard: 4), [0..<4, 4..<8, 8..<10])
    }
}

final class LedgerConcurrentOpenTests: XCTestCase {
    /// `serve` and `submit` may open a fresh ledger at the same moment: both must succeed.
    func testConcurrentOpensOfAFreshLedgerAllSucceed() throws {
        for round in 0..<5 {
            let dir = Fixtures.tempDir("ledger-race")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/l\(round).sqlite"
            let failures = Locked<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 6) { _ in
                do { _ = try Ledger(path: path) } catch { failures.mutate { $0.append("\(error)") } }
            }
            XCTAssertEqual(failures.value, [], "round \(round)")
        }
    }
}

private final class Locked<T> {
    private var v: T
    private let lock = NSLock()
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func mutate(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}
