import Foundation
import XCTest
@testable import PipelineMessaging
@testable import PipelineJobs

/// CURVE with real `dit-coordinator` / `dit-worker` processes on loopback (issue 6, "done when" (d)).
final class MessagingProcessTests: ProcessTestCase {
    /// A folder holding what a worker machine gets: its secret key and the coordinator's public key.
    private func workerFolder(_ name: String, key: String, coordinatorPub: String) throws -> String {
        let d = dir + "/" + name
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: key, toPath: d + "/" + URL(fileURLWithPath: key).lastPathComponent)
        try FileManager.default.copyItem(atPath: coordinatorPub, toPath: d + "/coordinator.pub")
        return d
    }

    private func log(_ name: String) -> String {
        (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? ""
    }

    func testAWorkerWithAnUnknownKeyIsRefusedAndAnAllowListedOneDoesTheJob() throws {
        let keys = dir + "/keys"
        let (status, out) = try runToEnd("dit-coordinator", ["keygen", "--out", keys, "--worker", "good"])
        XCTAssertEqual(status, 0, out)
        // A stranger: a key pair made elsewhere, never allow-listed, with the right coordinator.pub.
        let elsewhere = dir + "/elsewhere"
        XCTAssertEqual(try runToEnd("dit-coordinator", ["keygen", "--out", elsewhere, "--worker", "bad"]).0, 0)
        let good = try workerFolder("good-node", key: keys + "/good.key", coordinatorPub: keys + "/coordinator.pub")
        let bad = try workerFolder("bad-node", key: elsewhere + "/bad.key", coordinatorPub: keys + "/coordinator.pub")
        let badPub = try KeyStore.readKey(elsewhere + "/bad.pub")

        let port = try freePort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let ledger = dir + "/ledger.sqlite"
        let hb = ["--heartbeat", "0.2", "--liveness", "3"]
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 12, itemsPerShard: 4, seed: 5, bytesPerItem: 50)
        let (submitted, submitLog) = try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger])
        XCTAssertEqual(submitted, 0, submitLog)
        try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", endpoint, "--keys", keys] + hb, log: "coordinator.log")

        let stranger = try start("dit-worker", ["--connect", endpoint, "--keys", bad] + hb, log: "bad.log")
        try waitFor("the refusal in the coordinator's log", timeout: 10) {
            log("coordinator.log").contains("refused CURVE client key \(badPub)")
        }
        try waitFor("the refusal in the worker's log", timeout: 10) { log("bad.log").contains("refused this worker's CURVE key") }
        usleep(500_000)
        let l = try Ledger(path: ledger)
        XCTAssertTrue(try l.leaseHolders().isEmpty, "the refused worker got work")
        XCTAssertTrue(stranger.isRunning, "a refused worker keeps retrying with back-off; it does not crash")
        XCTAssertFalse(log("coordinator.log").contains("ready as peer"), log("coordinator.log"))

        try start("dit-worker", ["--connect", endpoint, "--keys", good] + hb, log: "good.log")
        try waitFor("the job to finish", timeout: 30) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
        XCTAssertTrue(log("coordinator.log").contains("with CURVE key \(try KeyStore.readKey(keys + "/good.pub"))"),
                      log("coordinator.log"))
    }
}
