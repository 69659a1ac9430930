import Foundation
import XCTest
@testable import PipelineJobs

/// `serve --exit-when-done` (batch allocations such as Slurm): the coordinator exits once no job in
/// the ledger is running and dismisses its workers, which then exit too.
final class JobsServeExitTests: ProcessTestCase {
    func testServeExitWhenDoneDismissesWorkers() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        // 2.4 s of work: both workers must have joined before the job ends, or the one left out
        // is never dismissed (it may start before the coordinator has bound its port, and then
        // retries the connection only after libzmq's 1 s reconnect interval). With 240 ms of
        // work a loaded machine lost that race about one run in ten.
        let spec = SyntheticSpec(outputDir: dir + "/out", items: 12, itemsPerShard: 3, seed: 4, bytesPerItem: 50,
                                 millisPerItem: 200)
        XCTAssertEqual(try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger]).0, 0)
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)",
                                                        "--exit-when-done"], log: "coordinator.log")
        let workers = try (0..<2).map { _ in try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)"]) }
        try waitFor("the coordinator and both workers to exit", timeout: 30) {
            !coordinator.isRunning && workers.allSatisfy { !$0.isRunning }
        }
        XCTAssertEqual(coordinator.terminationStatus, 0)
        for w in workers { XCTAssertEqual(w.terminationStatus, 0) }
        try assertExactlyOnce(ledger)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
        let log = try String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8)
        XCTAssertTrue(log.contains("no job left running"), log)
    }

    /// Without a running job the coordinator exits at once (a requeued allocation whose job is done).
    func testServeExitWhenDoneWithNothingToDo() throws {
        let port = try freePort()
        let ledger = dir + "/ledger.sqlite"
        let (status, log) = try runToEnd("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)",
                                                             "--exit-when-done"], timeout: 20)
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("no job left running"), log)
    }
}
