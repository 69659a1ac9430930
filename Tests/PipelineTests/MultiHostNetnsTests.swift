import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineJobs

/// The pipeline across a real network boundary: the coordinator and three workers each in their own
/// network namespace (veth pairs on a bridge, built by deploy/test/netns-lab.sh, addresses
/// 10.213.0.0/24 that exist only inside those namespaces), CURVE on, outputs on a shared folder.
/// Mid-job one worker's cable is cut and another worker is SIGKILLed; the job still completes,
/// every shard done exactly once, with outputs byte-identical to a one-worker run.
/// Needs root and iproute2; elsewhere it says so and skips.
final class MultiHostNetnsTests: ProcessTestCase {
    private var lab: Process?
    private var labInput: Pipe?
    private var labPrefix = ""

    override func tearDown() {
        // Kill the test's processes first, then close the lab's stdin: it kills whatever is
        // left in its namespaces and deletes them (it would do the same if this process died).
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        if let lab, let labInput {
            try? labInput.fileHandleForWriting.close()
            let deadline = Date().addingTimeInterval(15)
            while lab.isRunning && Date() < deadline { usleep(20_000) }
            if lab.isRunning { lab.terminate(); lab.waitUntilExit() }
            XCTAssertEqual(lab.terminationStatus, 0, "netns-lab cleanup: \(labLog())")
            if !labPrefix.isEmpty {
                XCTAssertFalse(ipOutput(["netns", "list"]).contains(labPrefix), "namespaces of \(labPrefix) left behind")
            }
        }
        lab = nil
        labInput = nil
        super.tearDown()
    }

    static let ip: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static let repoRoot: String = {
        // Tests/PipelineTests/<this file> -> repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    private func labLog() -> String { (try? String(contentsOfFile: dir + "/netns-lab.log", encoding: .utf8)) ?? "" }

    private func ipOutput(_ args: [String]) -> String {
        guard let ip = Self.ip else { return "" }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        guard (try? p.run()) != nil else { return "" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    private func ipRun(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.ip ?? "ip")
        p.arguments = args
        try p.run()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "ip \(args.joined(separator: " "))")
    }

    /// Starts the lab with `nodes` namespaces; returns its name prefix (namespaces PREFIX-n0...).
    private func startLab(nodes: Int) throws -> String {
        guard getuid() == 0 else { throw XCTSkip("multi-host test needs root to create network namespaces (ip netns)") }
        guard Self.ip != nil else { throw XCTSkip("multi-host test needs iproute2's `ip`, not found") }
        let script = Self.repoRoot + "/deploy/test/netns-lab.sh"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script, "\(nodes)"]
        let input = Pipe()
        p.standardInput = input
        let logPath = dir + "/netns-lab.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        lab = p
        labInput = input
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let log = labLog()
            if log.contains("ready\n") {
                guard let line = log.split(separator: "\n").first(where: { $0.hasPrefix("lab ") }) else { break }
                labPrefix = String(line.dropFirst(4))
                return labPrefix
            }
            if !p.isRunning {
                if p.terminationStatus == 77 { throw XCTSkip("network namespaces unavailable: \(log)") }
                break
            }
            usleep(20_000)
        }
        XCTFail("netns-lab did not come up: \(labLog())")
        throw CocoaError(.userCancelled)
    }

    func testCoordinatorAndThreeWorkersAcrossNamespacesSurviveCutAndKill() throws {
        let prefix = try startLab(nodes: 4)
        let exec = { (node: Int) in [Self.ip!, "netns", "exec", "\(prefix)-n\(node)"] }
        let keys = dir + "/keys"
        let ledger = dir + "/ledger.sqlite"
        // 36 shards of 4 items x 40 ms: ~6 s of work, so the faults land mid-job.
        let spec = SyntheticSpec(outputDir: dir + "/shared/out", items: 144, itemsPerShard: 4, seed: 21,
                                 bytesPerItem: 700, millisPerItem: 40)
        let (kg, kgLog) = try runToEnd("dit-coordinator", ["keygen", "--out", keys, "--worker", "w1", "--worker", "w2", "--worker", "w3"])
        XCTAssertEqual(kg, 0, kgLog)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        // A non-loopback bind: CURVE is required, and on.
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://10.213.0.1:5555", "--keys", keys,
                                      "--exit-when-done"] + hb, launcher: exec(0), log: "coordinator.log")
        var workers: [Int: Process] = [:]
        for n in 1...3 {
            workers[n] = try start("dit-worker", ["--connect", "tcp://10.213.0.1:5555", "--keys", keys, "--key-name", "w\(n)"] + hb,
                                   launcher: exec(n), log: "worker\(n).log")
        }
        let l = try Ledger(path: ledger)
        let id = { (n: Int) in "-\(workers[n]!.processIdentifier)" }
        let holds = { (n: Int) throws -> Bool in try l.leaseHolders().contains { $0.hasSuffix(id(n)) } }
        // Mid-job: workers 1 and 2 each hold a lease and some shards are already done. Worker 2
        // is frozen (SIGSTOP) before its lease is checked, so it cannot finish that shard
        // between the check and its SIGKILL (a loaded machine once let it).
        let w2 = workers[2]!.processIdentifier
        try waitFor("workers 1 and 2 to hold leases mid-job", timeout: 20) {
            kill(w2, SIGSTOP)
            usleep(100_000)   // a RESULT already on its way is recorded first
            if try holds(1) && holds(2) && l.shardCompletions(jobId: 1).contains(where: { $0.state == .done }) { return true }
            kill(w2, SIGCONT)
            return false
        }
        let doneAtFaults = try l.shardCompletions(jobId: 1).filter { $0.state == .done }.count
        XCTAssertLessThan(doneAtFaults, 30, "the faults happen mid-job")
        try ipRun(["-n", "\(prefix)-br", "link", "set", "p1", "down"])   // cut worker 1's cable
        kill(w2, SIGKILL)                                                 // and kill worker 2
        try waitFor("the job to finish", timeout: 40) { try l.jobState(1).isFinished }
        XCTAssertEqual(try l.jobState(1), .done)
        try assertExactlyOnce(ledger)
        // Both faulted workers lost a lease that was then run elsewhere.
        let attempts = try (0..<36).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }
        for n in [1, 2] {
            XCTAssertTrue(attempts.contains { $0.outcome == .released && $0.worker.hasSuffix(id(n)) },
                          "worker \(n)'s lease was released: \(attempts.filter { $0.worker.hasSuffix(id(n)) })")
        }
        XCTAssertTrue(attempts.contains { $0.outcome == .done && $0.worker.hasSuffix(id(3)) })
        // --exit-when-done: the coordinator exits and dismisses the worker it can still reach.
        try waitFor("the coordinator and worker 3 to exit", timeout: 15) { !coordinator.isRunning && !workers[3]!.isRunning }
        XCTAssertEqual(coordinator.terminationStatus, 0)
        XCTAssertEqual(workers[3]!.terminationStatus, 0)
        // The cut-off worker may still be finishing its orphaned shard: stop it before looking.
        kill(workers[1]!.processIdentifier, SIGKILL)
        workers[1]!.waitUntilExit()

        // A one-worker run of the same job on loopback.
        var one = spec
        one.outputDir = dir + "/one/out"
        one.millisPerItem = 0
        let (st, log) = try runToEnd("dit-coordinator", ["run", "synthetic"] + syntheticArgs(one)
                                     + ["--workers", "1", "--ledger", dir + "/one/ledger.sqlite"])
        XCTAssertEqual(st, 0, log)
        let oneTree = try tree(one.outputDir)
        XCTAssertEqual(oneTree.count, 37)
        // Temporaries a killed writer left are never outputs (the coordinator sweeps them).
        let distributed = try tree(spec.outputDir).filter { !AtomicFileWriter.isTemporary(($0.key as NSString).lastPathComponent) }
        XCTAssertEqual(Set(distributed.keys), Set(oneTree.keys))
        XCTAssertTrue(distributed == oneTree, "outputs across namespaces differ from the one-worker run")
        XCTAssertEqual(Set(try l.outputs(jobId: 1).map(\.path)), Set(oneTree.keys))
    }

    /// A link cut mid-job and restored: the cut worker loses its lease (run elsewhere) and
    /// its connection, reconnects once the cable is back, and its late RESULT for the lost
    /// lease is acknowledged as stale, not recorded. At the end `--exit-when-done` dismisses
    /// both workers, including one still reconnecting when the job ends: all three exit.
    func testACutAndRestoredLinkEndsWithEveryWorkerDismissed() throws {
        let prefix = try startLab(nodes: 3)
        let exec = { (node: Int) in [Self.ip!, "netns", "exec", "\(prefix)-n\(node)"] }
        let keys = dir + "/keys"
        let ledger = dir + "/ledger.sqlite"
        // 16 shards of 4 items x 40 ms: ~2.6 s of work, half of it each.
        let spec = SyntheticSpec(outputDir: dir + "/shared/out", items: 64, itemsPerShard: 4, seed: 5,
                                 bytesPerItem: 300, millisPerItem: 40)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["keygen", "--out", keys, "--worker", "w1", "--worker", "w2"]).0, 0)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://10.213.0.1:5555", "--keys", keys,
                                      "--exit-when-done"] + hb, launcher: exec(0), log: "coordinator.log")
        var workers: [Int: Process] = [:]
        for n in 1...2 {
            workers[n] = try start("dit-worker", ["--connect", "tcp://10.213.0.1:5555", "--keys", keys, "--key-name", "w\(n)"] + hb,
                                   launcher: exec(n), log: "worker\(n).log")
        }
        let l = try Ledger(path: ledger)
        let id1 = "-\(workers[1]!.processIdentifier)"
        try waitFor("worker 1 to hold a lease mid-job", timeout: 20) {
            try l.leaseHolders().contains { $0.hasSuffix(id1) } && l.shardCompletions(jobId: 1).contains { $0.state == .done }
        }
        try ipRun(["-n", "\(prefix)-br", "link", "set", "p1", "down"])
        usleep(1_200_000)   // past both liveness windows (0.6 s): each side gives the other up
        try ipRun(["-n", "\(prefix)-br", "link", "set", "p1", "up"])
        try waitFor("the job to finish", timeout: 40) { try l.jobState(1).isFinished }
        try waitFor("the coordinator and both workers to exit", timeout: 30) {
            !coordinator.isRunning && workers.values.allSatisfy { !$0.isRunning }
        }
        XCTAssertEqual(coordinator.terminationStatus, 0)
        for (n, w) in workers { XCTAssertEqual(w.terminationStatus, 0, "worker \(n)") }
        try assertExactlyOnce(ledger)
        let attempts = try (0..<16).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }
        XCTAssertTrue(attempts.contains { $0.outcome == .released && $0.worker.hasSuffix(id1) },
                      "worker 1's lease was released: \(attempts.filter { $0.worker.hasSuffix(id1) })")
        let w1 = try String(contentsOfFile: dir + "/worker1.log", encoding: .utf8)
        XCTAssertTrue(w1.contains("the coordinator dismissed this worker"), w1)
        let outputs = try tree(spec.outputDir).filter { !AtomicFileWriter.isTemporary(($0.key as NSString).lastPathComponent) }
        XCTAssertEqual(outputs, try reference(spec))
    }
}
