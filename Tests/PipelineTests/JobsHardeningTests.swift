import Foundation
import GRDB
import XCTest
@testable import PipelineJobs
@testable import PipelineMessaging
import PipelineFiles

/// Crafted DITP messages against a serving coordinator on loopback (issue 14): each fault is
/// a rejected message with the coordinator still serving, and a real worker then finishes
/// every shard with its files.
final class JobsHardeningTests: ProcessTestCase {
    // Heartbeats every 0.2 s, a worker lost after 1 s of silence: short, yet not flaky on a
    // loaded machine.
    let beat = 0.2
    let liveness = 5

    /// A synthetic job of 6 shards (3 items each) in a fresh ledger.
    func makeJob(_ ledgerPath: String, busyTimeout: Double = 10) throws -> (Ledger, SyntheticSpec) {
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 18, itemsPerShard: 3, seed: 7, bytesPerItem: 256)
        return (try Ledger.withSyntheticJob(ledgerPath, spec, busyTimeout: busyTimeout), spec)
    }

    /// A real worker finishes the job: every shard done once, the files equal an undisturbed run's.
    func finishWithARealWorker(_ c: InProcessCoordinator, _ ledgerPath: String, _ spec: SyntheticSpec,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let worker = try InProcessWorker(connect: c.endpoint.boundEndpoint, heartbeat: beat, liveness: liveness)
        defer { worker.stop() }
        let l = try Ledger(path: ledgerPath)
        try waitFor("the job to finish", timeout: 30) { try l.jobState(1).isFinished }
        XCTAssertTrue(c.isServing, file: file, line: line)
        try assertExactlyOnce(ledgerPath, file: file, line: line)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec), file: file, line: line)
        XCTAssertEqual(worker.service.endpoint.sessions, 1, "the worker never lost the coordinator", file: file, line: line)
    }

    func testCraftedResultsAreRejectedAndTheJobStillCompletes() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let (served, spec) = try makeJob(ledgerPath)
        let c = try InProcessCoordinator(ledger: served, heartbeat: beat, liveness: liveness)
        defer { XCTAssertNil(c.stop()) }
        let ledger = try Ledger(path: ledgerPath)   // this thread's own connection
        let rogue = try RawWorker(c.endpoint.boundEndpoint, beat: beat)
        try rogue.ready("rogue", session: "rogue-session")
        let started = monotonicNow()
        let exec = SyntheticKind().makeExecutor()
        let out = spec.outputDir

        // Non-finite metrics (`elapsed: "nan"` on the wire): dropped, the RESULT recorded.
        let (a0, t0) = try rogue.lease()
        let good0 = try exec.execute(t0, control: ShardControl()).outputs
        XCTAssertEqual(try rogue.report(ShardResult(a0, outputs: good0, metrics: ["elapsed": .nan, "rate": .infinity, "ok": 2])), .recorded)
        XCTAssertTrue(c.log.contains("non-finite metric(s) dropped: elapsed, rate"), "\(c.log.lines)")
        XCTAssertEqual(try ledger.doneMetrics(jobId: 1), ["ok": 2])

        var faults: [(name: String, reason: String)] = []
        func reject(_ name: String, reason: String, _ make: (Assignment, ShardTask) throws -> ShardResult) throws {
            let (a, t) = try rogue.lease()
            XCTAssertEqual(try rogue.report(try make(a, t)), .rejected, name)
            faults.append((name, reason))
        }
        let own = { (t: ShardTask) in "synthetic/" + String(format: "shard-%06d.bin", t.shardIndex) }
        try reject("empty outputs", reason: "not reported") { a, _ in ShardResult(a, outputs: []) }
        try reject("another shard's file", reason: "is not one of this shard's") { a, _ in ShardResult(a, outputs: good0) }
        try reject("an extra file", reason: "is not one of this shard's") { a, t in
            var outs = try exec.execute(t, control: ShardControl()).outputs
            outs.append(try OutputFileWriter.write(Data("x".utf8), to: out + "/synthetic/extra.bin", relativeTo: out))
            return ShardResult(a, outputs: outs)
        }
        try reject("one file listed 20000 times", reason: "listed more than once") { a, t in
            let outs = try exec.execute(t, control: ShardControl()).outputs
            return ShardResult(a, outputs: Array(repeating: outs[0], count: 20_000))
        }
        try reject("an item error outside the shard", reason: "outside the shard's items") { a, t in
            ShardResult(a, outputs: try exec.execute(t, control: ShardControl()).outputs,
                        itemErrors: [ItemError(item: 17, path: "x", reason: "y")])
        }
        try reject("a FIFO", reason: "is a FIFO") { a, t in
            let p = out + "/" + own(t)
            unlink(p)
            XCTAssertEqual(mkfifo(p, 0o644), 0)
            return ShardResult(a, outputs: [FileDigest(path: own(t), size: 0, sha256: SHA256.hex(Data()))])
        }
        try reject("a symbolic link to /dev/zero", reason: "symbolic link") { a, t in
            let p = out + "/" + own(t)
            unlink(p)
            XCTAssertEqual(symlink("/dev/zero", p), 0)
            return ShardResult(a, outputs: [FileDigest(path: own(t), size: 1 << 40, sha256: SHA256.hex(Data()))])
        }
        try reject("a big file with the wrong digest, hashed off the loop", reason: "sha256 on disk differs") { a, t in
            let p = out + "/" + own(t)
            unlink(p)
            let size = 48 << 20
            XCTAssertTrue(FileManager.default.createFile(atPath: p, contents: Data(count: size)))
            return ShardResult(a, outputs: [FileDigest(path: own(t), size: Int64(size), sha256: String(repeating: "0", count: 64))])
        }
        try rogue.idle(1)
        XCTAssertLessThan(rogue.longestHeartbeatGap, Double(liveness) * beat, "heartbeats paused")
        // Heartbeats came all along (not a gap check over two of them): about one per `beat`
        // since READY, however fast this machine ran the rest.
        XCTAssertGreaterThanOrEqual(rogue.heartbeatTimes.count, max(3, Int((monotonicNow() - started) / beat) / 2))
        // Every rejection is a failed attempt with its reason, and the shards go back to pending.
        let failed = try (0..<6).flatMap { try ledger.attempts(jobId: 1, shardIndex: $0) }.filter { $0.outcome == .failed }
        XCTAssertEqual(failed.count, faults.count)
        for f in faults {
            XCTAssertTrue(failed.contains { $0.reason?.contains(f.reason) ?? false }, "\(f.name): \(failed.map(\.reason))")
        }
        try rogue.send(.disconnect)
        for p in try FileManager.default.contentsOfDirectory(atPath: out + "/synthetic") where p != "shard-000000.bin" {
            unlink(out + "/synthetic/" + p)   // what the rogue left (the real worker overwrites anyway)
        }
        try finishWithARealWorker(c, ledgerPath, spec)
    }

    /// A message whose ledger write fails (SQLITE_FULL; SQLITE_BUSY while another process
    /// holds the write lock) fails alone, with a log line; the coordinator serves on.
    func testLedgerErrorsFailOneMessageAndServingGoesOn() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let (served, spec) = try makeJob(ledgerPath, busyTimeout: 0.2)
        let c = try InProcessCoordinator(ledger: served, heartbeat: beat, liveness: liveness)
        defer { XCTAssertNil(c.stop()) }
        let ledger = try Ledger(path: ledgerPath)   // this thread's own connection
        let rogue = try RawWorker(c.endpoint.boundEndpoint, beat: beat)
        try rogue.ready("rogue", session: "s")
        let (a, t) = try rogue.lease()
        let outs = try SyntheticKind().makeExecutor().execute(t, control: ShardControl()).outputs
        // A full disk: the database may not grow, and this RESULT's metrics need new pages.
        // (on the coordinator's own connection: its DatabaseQueue serializes this with the loop)
        try served.db.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
        }
        let big = Dictionary(uniqueKeysWithValues: (0..<20_000).map { ("metric_\($0)", Double($0)) })
        try rogue.send(.result(ShardResult(a, outputs: outs, metrics: big)))
        try waitFor("the failure to be logged", timeout: 10) { c.log.contains("full") }
        XCTAssertTrue(c.isServing)
        XCTAssertEqual(try ledger.shardCompletions(jobId: 1)[0].state, .leased, "nothing recorded")
        try served.db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA max_page_count = 1073741823") }

        // Another process holds the write lock for 1.5 s: every transaction meanwhile is BUSY.
        let holder = try DatabaseQueue(path: ledgerPath)
        let held = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? holder.inTransaction(.immediate) { _ in
                held.signal()
                usleep(1_500_000)
                return .commit
            }
        }
        held.wait()
        let locked = Date()
        try rogue.send(.request(credits: 1))
        // The REQUEST could not be applied while the lock was held; it is applied once it is free.
        guard case .assign? = try rogue.next(timeout: 10) else { return XCTFail("the deferred REQUEST was lost") }
        XCTAssertGreaterThan(Date().timeIntervalSince(locked), 1.4)
        XCTAssertTrue(c.log.contains("database is locked"), "\(c.log.lines.suffix(5))")
        XCTAssertTrue(c.isServing)
        XCTAssertLessThan(rogue.longestHeartbeatGap, Double(liveness) * beat)
        try rogue.send(.disconnect)
        try finishWithARealWorker(c, ledgerPath, spec)
    }

    /// Worker identity: another admitted worker cannot take over a worker id; a stale READY
    /// of an older connection does not displace the newer one; a lease whose ASSIGN went to
    /// a connection the worker had left is released at once (not after its 600 s).
    func testWorkerIdsAreBoundToTheirCredentialAndLostAssignsAreReleased() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 6, itemsPerShard: 3, seed: 1, bytesPerItem: 64)
        let c = try InProcessCoordinator(ledger: .withSyntheticJob(ledgerPath, spec), heartbeat: beat, liveness: liveness)
        defer { XCTAssertNil(c.stop()) }
        let ledger = try Ledger(path: ledgerPath)   // this thread's own connection
        let victim = try RawWorker(c.endpoint.boundEndpoint, beat: beat)
        try victim.ready("victim", session: "victim-token")
        let (a, t) = try victim.lease()
        // An impostor claims the victim's id: refused, and its RESULT for the victim's lease goes nowhere.
        let impostor = try RawWorker(c.endpoint.boundEndpoint, beat: beat)
        try impostor.ready("victim", session: "stolen?")
        try impostor.send(.request(credits: 1))
        let outs = try SyntheticKind().makeExecutor().execute(t, control: ShardControl()).outputs
        try impostor.send(.result(ShardResult(a, outputs: outs)))
        XCTAssertNil(try impostor.next(timeout: 0.5), "no ASSIGN, no ACK for an impostor")
        XCTAssertTrue(c.log.contains("refused READY from peer"), "\(c.log.lines)")
        XCTAssertEqual(try ledger.shardCompletions(jobId: 1).map(\.state), [.leased, .pending])
        // The victim is still connected and its RESULT counts.
        XCTAssertEqual(try victim.report(ShardResult(a, outputs: outs)), .recorded)

        // The victim takes a second lease, then "reconnects" (connection 2) saying it holds
        // nothing: that ASSIGN went to the connection it left, so the lease is released now.
        let (a1, _) = try victim.lease()
        XCTAssertEqual(a1.attempt, 1)
        let second = try RawWorker(c.endpoint.boundEndpoint, beat: beat)
        try second.ready("victim", session: "victim-token", connection: 2, holding: [])
        try waitFor("the lost lease to be released", timeout: 5) {
            try ledger.attempts(jobId: 1, shardIndex: 1).first?.outcome == .released
        }
        XCTAssertTrue(try ledger.attempts(jobId: 1, shardIndex: 1)[0].reason?.contains("never received its ASSIGN") ?? false)
        // A stale READY from the first connection, read late, does not displace the second.
        try victim.ready("victim", session: "victim-token", connection: 1)
        XCTAssertNil(try victim.next(timeout: 0.3))
        XCTAssertTrue(c.log.contains("dropped a stale READY of worker victim"), "\(c.log.lines)")
        let (a2, t2) = try second.lease()
        XCTAssertEqual(a2.shardId, a1.shardId)
        XCTAssertEqual(a2.attempt, 2, "released without using up the attempt budget")
        let outs2 = try SyntheticKind().makeExecutor().execute(t2, control: ShardControl()).outputs
        XCTAssertEqual(try second.report(ShardResult(a2, outputs: outs2)), .recorded)
        try waitFor("the job to finish", timeout: 10) { try ledger.jobState(1) == .done }
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// After a coordinator restart a worker may come back only after its largest back-off:
    /// the grace that keeps its leases is longer, and a returner that holds its lease keeps it.
    func testReconnectGraceOutlastsTheWorkersBackOff() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let (ledger, _) = try makeJob(ledgerPath)
        let endpoint = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 1, liveness: 3,
                                               logger: LogCapture().logger)
        defer { endpoint.close() }
        let service = CoordinatorService(ledger: ledger, endpoint: endpoint, logger: .silent)
        XCTAssertGreaterThan(service.reconnectGrace, WorkerEndpoint.defaultReconnectMax + 3)
        // A returner listing its lease keeps it; the ledger remembers its credential.
        let core = CoordinatorCore<String>(ledger: ledger)
        _ = try core.handle(.hello("p", workerId: "w", host: "h", pid: 1, threads: 1, credential: "session:a", holding: []))
        let g = try XCTUnwrap(core.handle(.request("p", credits: 1)).first?.1)
        let restarted = CoordinatorCore<String>(ledger: ledger)
        _ = try restarted.handle(.hello("p2", workerId: "w", host: "h", pid: 1, threads: 1, credential: "session:a",
                                        holding: [LeaseRef(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt)]))
        XCTAssertEqual(try ledger.leaseHolders(), ["w"])
        // Another process under the same id (the old one is gone): the old one's lease is released.
        let again = CoordinatorCore<String>(ledger: ledger)
        _ = try again.handle(.hello("p3", workerId: "w", host: "h", pid: 1, threads: 1, credential: "session:b"))
        XCTAssertEqual(try ledger.leaseHolders(), [])
        XCTAssertEqual(try ledger.attempts(jobId: 1, shardIndex: 0).map(\.outcome), [.released])
    }

    /// With an off-loop executor the core hashes a RESULT's files and runs the finalize step
    /// on other threads: `handle` and `tick` return before either is done, and the verdict
    /// (with its ACK) and the job's end arrive through `applyFinishedWork`.
    func testHashingAndFinalizeRunOffTheLoop() throws {
        let (ledger, spec) = try makeJob(dir + "/ledger.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        core.offLoop = OffLoopWork()
        let exec = SyntheticKind().makeExecutor()
        _ = try core.handle(.hello("p", workerId: "w", host: "h", pid: 1, threads: 1))
        var queue = try core.handle(.request("p", credits: 6))
        XCTAssertEqual(queue.count, 6)
        _ = core.takeReportAcks()
        while let (peer, g) = queue.popLast() {
            let r = try exec.execute(g.task, control: ShardControl())
            XCTAssertTrue(try core.handle(.result(peer, ShardCompletion(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt,
                                                                        outputs: r.outputs))).isEmpty)
        }
        XCTAssertTrue(core.takeReportAcks().isEmpty, "no verdict before the files are hashed")
        func drain() throws {
            let end = Date().addingTimeInterval(10)
            while core.offLoop!.outstanding > 0 && Date() < end {
                _ = try core.applyFinishedWork()
                usleep(5_000)
            }
        }
        try drain()
        XCTAssertEqual(core.takeReportAcks().map(\.verdict), Array(repeating: .recorded, count: 6))
        _ = try core.tick()
        XCTAssertEqual(try ledger.jobState(1), .running, "finalize runs off the loop")
        try drain()
        XCTAssertEqual(try ledger.jobState(1), .done)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// SIGKILL of an embedded `run`: its workers exit within seconds (parent-death signal).
    func testWorkersOfAKilledEmbeddedRunExit() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 400, itemsPerShard: 4, seed: 2, bytesPerItem: 64, millisPerItem: 50)
        let run = try start("dit-coordinator", ["run", "synthetic"] + syntheticArgs(spec) + ["--workers", "2", "--ledger", ledgerPath],
                            log: "run.log")
        let l = try Ledger(path: ledgerPath)
        var pids: [Int32] = []
        try waitFor("both workers to hold a lease", timeout: 30) {
            pids = try l.leaseHolders().compactMap { $0.split(separator: "-").last.flatMap { Int32($0) } }
            return pids.count == 2
        }
        kill(run.processIdentifier, SIGKILL)
        run.waitUntilExit()
        func alive(_ pid: Int32) -> Bool {
            guard kill(pid, 0) == 0 else { return false }
            // A zombie waiting for its new parent to reap it has exited.
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
        }
        let killed = Date()
        try waitFor("the orphaned workers to exit", timeout: 10) { !pids.contains(where: alive) }
        print("orphaned workers gone \(String(format: "%.2f", Date().timeIntervalSince(killed))) s after the SIGKILL")
    }
}
