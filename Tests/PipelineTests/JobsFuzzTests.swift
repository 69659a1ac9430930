import Foundation
import XCTest
@testable import PipelineJobs
@testable import PipelineMessaging
import PipelineFiles
import PipelineTensor

/// Thousands of malformed and adversarial DITP messages (deterministic seed, loopback only,
/// bounded in count and time) against a serving coordinator while a real worker runs a job:
/// heartbeats never pause beyond the liveness window, and the job's outputs are all there
/// and verified.
final class JobsFuzzTests: ProcessTestCase {
    let beat = 0.2
    let liveness = 5

    func testAdversarialMessagesWhileARealWorkerCompletesAJob() throws {
        let ledgerPath = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 48, itemsPerShard: 3, seed: 14, bytesPerItem: 512,
                                 millisPerItem: 40)
        let c = try InProcessCoordinator(ledger: .withSyntheticJob(ledgerPath, spec), heartbeat: beat, liveness: liveness)
        defer { XCTAssertNil(c.stop()) }
        let ledger = try Ledger(path: ledgerPath)   // this thread's own connection
        let endpoint = c.endpoint.boundEndpoint
        try FileManager.default.createDirectory(atPath: spec.outputDir + "/synthetic", withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(spec.outputDir + "/synthetic/fifo", 0o644), 0)
        XCTAssertEqual(symlink("/dev/zero", spec.outputDir + "/synthetic/zero"), 0)

        // A probe that only listens (and heartbeats back), on its own thread.
        let probe = HeartbeatProbe(try RawWorker(endpoint, beat: beat))
        let worker = try InProcessWorker(connect: endpoint, heartbeat: beat, liveness: liveness)
        defer { worker.stop() }
        try waitFor("the worker to take a lease", timeout: 10) { !(try ledger.leaseHolders().isEmpty) }

        var rng = SplitMix64(seed: 0x1414)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func junk(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let attackers = try (0..<4).map { i -> RawWorker in
            let a = try RawWorker(endpoint, beat: beat)
            try a.ready("fuzz-\(i)", session: "fuzz-session-\(i)")
            return a
        }
        let stranger = try RawWorker(endpoint, beat: beat)   // never says READY
        let v = Array(WireCodec.version.utf8)
        let paths = ["", "/etc/passwd", "../../etc/passwd", "synthetic/fifo", "synthetic/zero", "synthetic/../x",
                     "synthetic/shard-000000.bin", "synthetic/shard-000003.bin", "synthetic//shard-000001.bin", "\u{0}"]
        func output() -> OutputRecord {
            OutputRecord(path: paths[pick(paths.count)], size: [0, 1, -1, Int64.max][pick(4)],
                         sha256: [String(repeating: "0", count: 64), "", "zz"][pick(3)])
        }
        func result(job: Int64 = 1) -> ShardResult {
            let outputs: [OutputRecord]
            switch pick(4) {
            case 0: outputs = []
            case 1: outputs = Array(repeating: output(), count: 1 + pick(3000))
            default: outputs = (0..<pick(5)).map { _ in output() }
            }
            return ShardResult(jobId: [job, 0, -1, 99][pick(4)], shardId: Int64(pick(20)), attempt: pick(4), outputs: outputs,
                               itemErrors: (0..<pick(3)).map { _ in ItemError(item: pick(100) - 50, path: "p", reason: "r") },
                               metrics: ["elapsed": [.nan, .infinity, -.infinity, -1, 1e308][pick(5)]])
        }
        let validBody = try WireCodec.body(of: .result(result()))
        var sent = 0, stolen = 0
        let start = monotonicNow()
        while sent < 5000 && monotonicNow() - start < 5 {
            let a = attackers[pick(attackers.count)]
            switch pick(12) {
            case 0: try stranger.socket.send((0..<(1 + pick(5))).map { _ in junk(pick(64)) })
            case 1:
                var body = validBody
                for _ in 0..<(1 + pick(8)) where !body.isEmpty { body[pick(body.count)] = UInt8(truncatingIfNeeded: rng.next()) }
                try a.socket.send([[], v, [WireCommand.allCases[pick(8)].rawValue], body])
            case 2:
                // Steal the real worker's id on a connection that is not (or no longer) a worker.
                try a.send(.disconnect)
                try a.ready(worker.workerId, session: "guess-\(pick(1000))")
            case 3: try a.ready("fuzz-\(pick(4))", session: "fuzz-session-\(pick(4))", connection: pick(3),
                                holding: [LeaseRef(jobId: 1, shardId: Int64(pick(16)), attempt: 1)])
            case 4: try a.socket.send([[], v, [WireCommand.request.rawValue], Array(#"{"credits":\#([0, -5, 1 << 21][pick(3)])}"#.utf8)])
            case 5, 6: try a.send(.result(result()))
            case 7: try a.send(.failed(ShardFailure(jobId: 1, shardId: Int64(pick(20)), attempt: pick(4), reason: "fuzz",
                                                    retryable: pick(2) == 0)))
            case 8:
                try a.send(.disconnect)
                try a.ready("fuzz-\(pick(4))", session: "fuzz-session-\(pick(4))", connection: 5 + pick(5))
            case 9: try a.send([.heartbeat, .assign(MessagingFixtures.assignment()),
                                .ack(Acknowledgement(jobId: 1, shardId: 1, attempt: 1, verdict: .recorded))][pick(3)])
            case 10 where stolen < 4:
                // Take a real lease and answer it with a bad RESULT: rejected, retried elsewhere.
                try a.send(.request(credits: 1))
                stolen += 1
            default:
                while let frames = try a.socket.receive(dontWait: true, maxFrames: 8, maxBytes: 1 << 20) {
                    if case .assign(let asg)? = try? WireCodec.decode(frames) {
                        var r = result()
                        (r.jobId, r.shardId, r.attempt) = (asg.jobId, asg.shardId, asg.attempt)
                        try a.send(.result(r))
                    }
                }
            }
            sent += 1
            if sent % 200 == 0 { usleep(20_000) }   // let the real work proceed meanwhile
        }
        XCTAssertGreaterThanOrEqual(sent, 2000)
        for a in attackers { try a.send(.disconnect) }   // leases a thief still holds go back
        try waitFor("the job to finish", timeout: 60) { try ledger.jobState(1).isFinished }
        let gap = probe.stop()
        XCTAssertTrue(c.isServing)
        XCTAssertLessThan(gap, Double(liveness) * beat, "heartbeats paused for \(gap) s")
        XCTAssertEqual(worker.service.endpoint.sessions, 1, "the real worker never lost its coordinator")
        try assertExactlyOnce(ledgerPath)
        unlink(spec.outputDir + "/synthetic/fifo")
        unlink(spec.outputDir + "/synthetic/zero")
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
        XCTAssertTrue(c.log.contains("refused READY from peer"))
        print("fuzz: \(sent) messages; longest heartbeat gap \(String(format: "%.3f", gap)) s (window \(Double(liveness) * beat) s)")
    }
}

/// Listens on a `RawWorker` on its own thread; `stop` returns the longest heartbeat gap.
final class HeartbeatProbe: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)
    private var gap = 0.0

    init(_ w: RawWorker) {
        Thread { [self] in
            try? w.ready("probe", session: "probe-session")
            while true {
                lock.lock()
                let stop = stopping
                lock.unlock()
                if stop { break }
                _ = try? w.next(timeout: 0.05)
            }
            lock.lock()
            gap = w.longestHeartbeatGap
            lock.unlock()
            done.signal()
        }.start()
    }

    func stop() -> Double {
        lock.lock(); stopping = true; lock.unlock()
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return gap
    }
}
