import Foundation
import XCTest
@testable import PipelineJobs

/// One coordinator per ledger (LEDGER.lock), and the ledger commands of other processes
/// through the running coordinator (CONTROL), with CURVE like a worker.
final class JobsLedgerLockTests: ProcessTestCase {
    func testSecondHolderIsRefusedNamingTheFirst() throws {
        let ledger = dir + "/l.sqlite"
        let first = try LedgerLock(ledger: ledger, role: "serve")
        try first.record(endpoint: "tcp://head:5555")
        XCTAssertThrowsError(try LedgerLock(ledger: ledger, role: "serve")) { error in
            guard case let .held(path, holder)? = error as? LedgerLock.LockError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, ledger)
            XCTAssertEqual(holder?.pid, Int(getpid()))
            XCTAssertEqual(holder?.endpoint, "tcp://head:5555")
            XCTAssertTrue("\(error)".contains("--coordinator tcp://head:5555"), "\(error)")
        }
        first.release()
        let second = try LedgerLock(ledger: ledger, role: "status")
        XCTAssertEqual(second.holder?.role, "status")
        XCTAssertNil(second.holder?.endpoint, "a new holder's record replaces the old one")
        XCTAssertEqual(LedgerLock.advertised("tcp://0.0.0.0:5555"), "tcp://\(ProcessInfo.processInfo.hostName):5555")
        XCTAssertEqual(LedgerLock.advertised("tcp://127.0.0.1:7"), "tcp://127.0.0.1:7")
    }

    /// A serving coordinator holds its ledger: a second `serve` or `run` and direct
    /// `submit`/`status` are refused with the way in; over CONTROL (CURVE keys of the
    /// allow-list) submit, status, cancel and retry work; a key not on the list gets nothing.
    func testCommandsGoThroughTheRunningCoordinator() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite", keys = dir + "/keys", stranger = dir + "/stranger"
        XCTAssertEqual(try runToEnd("dit-coordinator", ["keygen", "--out", keys, "--worker", "admin"]).0, 0)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["keygen", "--out", stranger, "--worker", "admin"]).0, 0)
        // The stranger knows the coordinator's public key, but its own key is not on the allow-list.
        try FileManager.default.removeItem(atPath: stranger + "/coordinator.pub")
        try FileManager.default.copyItem(atPath: keys + "/coordinator.pub", toPath: stranger + "/coordinator.pub")
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", endpoint, "--keys", keys],
                                    log: "coordinator.log")
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 8, itemsPerShard: 4, seed: 1, bytesPerItem: 10)
        let control = ["--coordinator", endpoint, "--keys", keys, "--key-name", "admin"]
        let (ok, out) = try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + control)
        XCTAssertEqual(ok, 0, out)
        XCTAssertEqual(out, "1\n")
        let (again, out2) = try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + control)
        XCTAssertEqual(again, 0, out2)
        XCTAssertTrue(out2.contains("same job already in the ledger: 1"), out2)

        for args in [["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(try freePort())"],
                     ["run", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger],
                     ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger],
                     ["status", "--ledger", ledger]] {
            let (status, log) = try runToEnd("dit-coordinator", args)
            XCTAssertNotEqual(status, 0, "\(args[0]) must be refused: \(log)")
            XCTAssertTrue(log.contains("in use by serve pid \(coordinator.processIdentifier)"), log)
            XCTAssertTrue(log.contains("--coordinator \(endpoint)"), log)
        }

        let (c, cancelled) = try runToEnd("dit-coordinator", ["cancel", "1"] + control)
        XCTAssertEqual(c, 0, cancelled)
        XCTAssertEqual(cancelled, "job 1 cancelled\n")
        let (s, status) = try runToEnd("dit-coordinator", ["status", "1"] + control)
        XCTAssertEqual(s, 0, status)
        XCTAssertTrue(status.contains("cancelled"), status)
        // The coordinator's own key may send CONTROL too (its pod has no worker key).
        let (r, retried) = try runToEnd("dit-coordinator", ["retry", "1", "--coordinator", endpoint, "--keys", keys,
                                                            "--key-name", "coordinator"])
        XCTAssertEqual(r, 0, retried)
        XCTAssertEqual(retried, "job 1: 0 failed shard(s) back to pending\n")
        let (u, unknown) = try runToEnd("dit-coordinator", ["cancel", "9"] + control)
        XCTAssertNotEqual(u, 0)
        XCTAssertTrue(unknown.contains("no job 9 in the ledger"), unknown)
        // Not on the allow-list: refused by ZAP, so no reply.
        let (k, refused) = try runToEnd("dit-coordinator", ["status", "--coordinator", endpoint, "--keys", stranger,
                                                            "--key-name", "admin", "--timeout", "2"])
        XCTAssertNotEqual(k, 0)
        XCTAssertTrue(refused.contains("no reply from the coordinator"), refused)

        coordinator.terminate()
        try waitFor("the coordinator to exit", timeout: 10) { !coordinator.isRunning }
        let (d, direct) = try runToEnd("dit-coordinator", ["status", "1", "--ledger", ledger])
        XCTAssertEqual(d, 0, "no coordinator: the file is opened directly: \(direct)")
        XCTAssertTrue(direct.contains("job 1 synthetic [running]"), direct)
    }
}
