import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineJobs

/// Runs real `dit-coordinator` and `dit-worker` processes (found next to the test bundle
/// in the build products folder) in a scratch folder; kills what is left at the end.
class ProcessTestCase: XCTestCase {
    var dir = ""
    var children: [Process] = []

    override func setUp() { dir = Fixtures.tempDir("jobs-it") }
    override func tearDown() {
        for p in children where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        // DIT_KEEP_TEST_DIRS=1 keeps the scratch folder (process logs, ledger) for a post-mortem.
        if ProcessInfo.processInfo.environment["DIT_KEEP_TEST_DIRS"] != nil {
            print("kept \(dir)")
        } else {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

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
        try start(name, args, launcher: [], log: log)
    }

    /// Starts a built binary through a launcher command, e.g. `["/usr/sbin/ip", "netns", "exec", NS]`
    /// (which execs the binary, so the process id is the binary's).
    @discardableResult
    func start(_ name: String, _ args: [String], launcher: [String], log: String? = nil) throws -> Process {
        let p = Process()
        let exe = try binary(name)
        p.executableURL = URL(fileURLWithPath: launcher.first ?? exe)
        p.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [exe] + args
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
}

extension XCTestCase {
    /// Every file under `root` (relative path -> bytes): output trees compared byte for byte.
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
}
