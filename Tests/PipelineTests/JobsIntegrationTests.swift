import Foundation
import XCTest
@testable import Pipeline

/// Real `dit-coordinator` and `dit-worker` processes on loopback (found next to the test
/// bundle in the build products folder). Each test is bounded to seconds.
final class JobsIntegrationTests: XCTestCase {
    var dir = ""
    var children: [Process] = []

    override func setUp() { dir = Fixtures.tempDir("jobs-it") }
    override func tearDown() {
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: dir)
    }

    // MARK: helpers

    static let products: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // .../debug/X.xctest may itself be a folder (Darwin layout).
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("dit-coordinator").path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        return url.path
    }()

    func binary(_ name: String) throws -> String {
        let p = Self.products + "/" + name
        guard FileManager.default.isExecutableFile(atPath: p) else {
            XCTFail("\(name) not built next to the test bundle (\(Self.products)); run `swift build` first")
            throw CocoaError(.fileNoSuchFile)
        }
        return p
    }

    @discardableResult
    func start(_ name: String, _ args: [String], log: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary(name))
        p.arguments = args
        let logPath = dir + "/" + (log ?? "\(name)-\(children.count).log")
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = h
        p.standardError = h
        try p.run()
        children.append(p)
        return p
    }

    /// Runs a command to its end (bounded) and returns (status, stdout+stderr).
    func runToEnd(_ name: String, _ args: [String], timeout: Double = 60) throws -> (Int32, String) {
        let log = "run-\(children.count).log"
        let p = try start(name, args, log: log)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); XCTFail("\(name) \(args) timed out") }
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: dir + "/" + log, encoding: .utf8)) ?? "")
    }

    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw CocoaError(.fileWriteUnknown) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    func waitFor(_ what: String, timeout: Double, _ cond: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try cond() { return }
            usleep(50_000)
        }
        XCTFail("timed out waiting for \(what)")
        throw CocoaError(.userCancelled)
    }

    func tree(_ root: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(atPath: root)
        while let p = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + p, isDirectory: &isDir)
            if !isDir.boolValue { out[p] = try Data(contentsOf: URL(fileURLWithPath: root + "/" + p)) }
        }
        return out
    }

    /// The outputs an undisturbed in-process run writes for the same spec.
    func reference(_ spec: SyntheticSpec) throws -> [String: Data] {
        var s = spec
        s.outputDir = dir + "/reference"
        s.millisPerItem = 0
        let specData = try JobKinds.encode(s)
        let plan = try SyntheticKind().plan(spec: specData)
        let exec = SyntheticKind().makeExecutor()
        var outs: [FileDigest] = []
        for (i, shard) in plan.shards.enumerated() {
            let t = ShardTask(kind: "synthetic", jobId: 0, shardIndex: i, itemStart: shard.itemStart, itemEnd: shard.itemEnd,
                              outputDir: s.outputDir, jobSpec: specData, shardSpec: shard.spec)
            outs += try exec.execute(t, control: ShardControl()).outputs
        }
        _ = try SyntheticKind().finalize(spec: specData, outputDir: s.outputDir, shardOutputs: outs)
        return try tree(s.outputDir)
    }

    func syntheticArgs(_ s: SyntheticSpec) -> [String] {
        ["--out", s.outputDir, "--items", "\(s.items)", "--items-per-shard", "\(s.itemsPerShard)", "--seed", "\(s.seed)",
         "--bytes-per-item", "\(s.bytesPerItem)", "--millis-per-item", "\(s.millisPerItem)"]
            + (s.badItems.isEmpty ? [] : ["--bad-items"] + s.badItems.map(String.init))
    }

    func assertExactlyOnce(_ ledgerPath: String, job: Int64 = 1, file: StaticString = #filePath, line: UInt = #line) throws {
        let l = try Ledger(path: ledgerPath)
        XCTAssertEqual(try l.jobState(job), .done, file: file, line: line)
        let comps = try l.shardCompletions(jobId: job)
        XCTAssertFalse(comps.isEmpty, file: file, line: line)
        for c in comps {
            XCTAssertEqual(c.state, .done, "shard \(c.index)", file: file, line: line)
            XCTAssertEqual(c.doneAttempts, 1, "shard \(c.index) done exactly once", file: file, line: line)
        }
    }

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
        usleep(100_000)
        kill(victim.processIdentifier, SIGKILL)
        try waitFor("the job to finish", timeout: 30) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        let all = try (0..<8).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }
        XCTAssertTrue(all.contains { $0.outcome == "released" && $0.worker.hasSuffix("-\(victim.processIdentifier)") },
                      "the killed worker's lease was released: \(all)")
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
    }

    /// (b) SIGKILL + restart of the coordinator mid-job: the job resumes, nothing done is redone.
    func testCoordinatorKilledAndRestarted() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 60, itemsPerShard: 5, seed: 9, bytesPerItem: 300,
                                 millisPerItem: 30)
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
        XCTAssertLessThan(doneBefore.count, 12, "killed mid-job")
        usleep(300_000)
        try start("dit-coordinator", serve)
        try waitFor("the job to finish", timeout: 40) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        for i in doneBefore {
            XCTAssertEqual(try l.attempts(jobId: 1, shardIndex: i).filter { $0.outcome == "done" }.count, 1)
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
        XCTAssertEqual(try l.attempts(jobId: 1, shardIndex: 0).map(\.outcome), ["failed", "failed"])
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
        XCTAssertEqual(first.first?.outcome, "failed")
        XCTAssertTrue(first.first?.reason?.contains("abandoned") ?? false, "\(first)")
        try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"])
        try waitFor("the job to finish", timeout: 20) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
    }
}
