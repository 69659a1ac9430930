import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineJobs

/// The coordinator/worker protocol's reliability with real processes on loopback: reports that
/// survive a coordinator crash, and an `--exit-when-done` that reaches every worker.
final class JobsReliabilityTests: ProcessTestCase {
    /// The coordinator dies with a worker's RESULT in flight: it is frozen (SIGSTOP) while the
    /// worker finishes its shard, so the RESULT lands unread in the dead process's socket, then
    /// SIGKILLed and restarted on the same ledger. The worker never had an ACK, so it sends
    /// the RESULT again on its new connection; the restarted coordinator finds the lease in
    /// the ledger and records the shard done from it, long before the lease would expire.
    func testAResultLostWithTheCoordinatorIsResentToItsSuccessor() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        // One shard of 6 items x 250 ms: 1.5 s of work.
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 6, itemsPerShard: 6, seed: 3, bytesPerItem: 64,
                                 millisPerItem: 250)
        let serve = ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)", "--heartbeat", "0.2", "--liveness", "3"]
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec)
                                    + ["--ledger", ledger, "--lease-seconds", "120"]).0, 0)
        let first = try start("dit-coordinator", serve, log: "coordinator1.log")
        // A worker patient with a silent coordinator (window 10 s): only the dropped connection
        // tells it the coordinator is gone, so the RESULT goes out on the frozen one.
        let worker = try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)", "--heartbeat", "0.2", "--liveness", "50"],
                               log: "worker.log")
        let l = try Ledger(path: ledger)
        let files = { () -> [String] in (try? FileManager.default.contentsOfDirectory(atPath: spec.outputDir + "/synthetic")) ?? [] }
        // Mid-shard: the lease is in the ledger and the worker has opened its temporary output
        // (the lease alone does not prove the ASSIGN left: it is written first).
        try waitFor("the worker to be mid-shard", timeout: 15) {
            try l.leaseHolders().contains { $0.hasSuffix("-\(worker.processIdentifier)") } && files().contains(where: AtomicFileWriter.isTemporary)
        }
        kill(first.processIdentifier, SIGSTOP)
        try waitFor("the worker to finish its shard", timeout: 15) {
            files().contains { $0.hasPrefix("shard-") && !AtomicFileWriter.isTemporary($0) }
        }
        usleep(500_000)   // its RESULT leaves for the frozen coordinator
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertEqual(try l.shardCompletions(jobId: 1).map(\.state), [.leased], "the dead coordinator recorded nothing")
        let restart = Date()
        try start("dit-coordinator", serve, log: "coordinator2.log")
        try waitFor("the restarted coordinator to record the shard", timeout: 20) { try l.jobState(1).isFinished }
        XCTAssertLessThan(Date().timeIntervalSince(restart), 20, "well before the 120 s lease would expire")
        try assertExactlyOnce(ledger)
        let attempts = try l.attempts(jobId: 1, shardIndex: 0)
        XCTAssertEqual(attempts.map(\.outcome), [.done], "done once, from the first (and only) attempt: \(attempts)")
        XCTAssertTrue(attempts.first?.worker.hasSuffix("-\(worker.processIdentifier)") ?? false)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
        let workerLog = try String(contentsOfFile: dir + "/worker.log", encoding: .utf8)
        XCTAssertTrue(workerLog.contains("re-sending 1 unacknowledged report(s)"), workerLog)
    }

    /// `--exit-when-done` while a worker is away: it was frozen (SIGSTOP) past its liveness
    /// window, so the coordinator expired it, and the job ended without it. When it wakes it
    /// reconnects (after its back-off) to a coordinator that must still be there to dismiss
    /// it: otherwise it would retry forever.
    func testExitWhenDoneWaitsForAWorkerThatIsReconnecting() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 32, itemsPerShard: 4, seed: 8, bytesPerItem: 100,
                                 millisPerItem: 50)
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)",
                                                        "--exit-when-done"] + hb, log: "coordinator.log")
        let sleeper = try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"] + hb, log: "sleeper.log")
        let l = try Ledger(path: ledger)
        try waitFor("the first worker to hold a lease", timeout: 15) {
            try l.leaseHolders().contains { $0.hasSuffix("-\(sleeper.processIdentifier)") }
        }
        kill(sleeper.processIdentifier, SIGSTOP)
        let other = try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"] + hb, log: "other.log")
        try waitFor("the job to finish without the frozen worker", timeout: 30) { try l.jobState(1).isFinished }
        usleep(300_000)
        kill(sleeper.processIdentifier, SIGCONT)
        try waitFor("the coordinator and both workers to exit", timeout: 20) {
            !coordinator.isRunning && !sleeper.isRunning && !other.isRunning
        }
        XCTAssertEqual(coordinator.terminationStatus, 0)
        XCTAssertEqual(sleeper.terminationStatus, 0)
        XCTAssertEqual(other.terminationStatus, 0)
        try assertExactlyOnce(ledger)
        // The frozen worker was dismissed mid-shard: like a killed writer it may leave a
        // temporary file, which is never an output.
        let outputs = try tree(spec.outputDir).filter { !AtomicFileWriter.isTemporary(($0.key as NSString).lastPathComponent) }
        XCTAssertEqual(outputs, try reference(spec))
        let log = try String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8)
        XCTAssertTrue(log.contains("workers dismissed: "), log)
        let sleeperLog = try String(contentsOfFile: dir + "/sleeper.log", encoding: .utf8)
        XCTAssertTrue(sleeperLog.contains("the coordinator dismissed this worker"), sleeperLog)
    }
}
