import Foundation
import XCTest
@testable import PipelineMessaging

/// The worker's side of DITP/1 revision 3: what its READY says about itself, and the
/// bounded wait for a coordinator that is gone.
final class MessagingWorkerIdentityTests: XCTestCase {
    let beat = 0.1

    func testReadyCarriesSessionConnectionAndHeldLeasesAndAnOrphanGivesUp() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: log.logger)
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello("orphan"), curve: nil,
                                   heartbeatInterval: beat, liveness: 3, logger: LogCapture().logger)
        w.reconnectInitial = 0.1
        w.reconnectMax = 0.2
        w.giveUpAfter = 1
        let started = DispatchSemaphore(value: 0)
        let runner = WorkerRunner(w) { a in
            started.signal()
            usleep(200_000)
            return .result(MessagingFixtures.result(for: a))
        }
        let ready = try XCTUnwrap(MessagingFixtures.receive(c, timeout: 5) { $0.isReady })
        guard case .ready(let hello) = ready.message else { return XCTFail("not READY") }
        XCTAssertEqual(hello.connection, 1)
        XCTAssertEqual(hello.holding, [])
        XCTAssertEqual(hello.session?.count, 32)
        XCTAssertEqual(c.credential(of: ready.peer), WorkerCredential(clientKey: nil, hello: hello))
        XCTAssertFalse(c.credential(of: ready.peer)?.value.contains(hello.session!) ?? true, "only a digest of the token is kept")
        // A lease it holds is listed on its next connection (its report is not acknowledged).
        _ = try MessagingFixtures.receive(c, timeout: 5) { $0.isRequest }
        let a = MessagingFixtures.assignment()
        try c.send(.assign(a), to: ready.peer)
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        _ = try MessagingFixtures.receive(c, timeout: 5) { $0.isResult }
        c.close()   // the coordinator is gone for good
        XCTAssertTrue(runner.join(timeout: 10), "the worker gave up")
        XCTAssertTrue(w.gaveUp)

        // A revision-3 READY that lists its held leases, seen by a new coordinator on the port.
        let c2 = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: log.logger)
        defer { c2.close() }
        let w2 = try WorkerEndpoint(connect: c2.boundEndpoint, hello: MessagingFixtures.hello("holder"), curve: nil,
                                    heartbeatInterval: beat, liveness: 3, logger: LogCapture().logger)
        w2.reconnectInitial = 0.1
        let r2 = WorkerRunner(w2) { a in usleep(1_500_000); return .result(MessagingFixtures.result(for: a)) }
        let first = try XCTUnwrap(MessagingFixtures.receive(c2, timeout: 5) { $0.isReady })
        _ = try MessagingFixtures.receive(c2, timeout: 5) { $0.isRequest }
        try c2.send(.assign(a), to: first.peer)
        // No heartbeats for longer than its liveness window (they leave only from `receive`):
        // it reconnects and says READY again, holding the running lease.
        usleep(800_000)
        var again: (peer: PeerID, message: WireMessage)?
        let end = Date().addingTimeInterval(5)
        while again == nil && Date() < end {
            again = try MessagingFixtures.receive(c2, timeout: 0.1) { $0.isReady }
        }
        guard case .ready(let h2)? = again?.message else { return XCTFail("no second READY") }
        XCTAssertEqual(h2.connection, 2)
        XCTAssertEqual(h2.holding, [LeaseRef(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt)])
        w2.stop(graceful: false)
        XCTAssertTrue(r2.join(timeout: 10))
    }
}
