import Foundation
import Logging
import XCTest
@testable import PipelineMessaging

/// DITP/1 revision 2: reports kept until acknowledged, and dismissals that are heard.
final class MessagingReliabilityTests: XCTestCase {
    let beat = 0.1

    /// A RESULT the coordinator never acknowledged (it went away after, or before, it
    /// arrived) is sent again on the next connection; once acknowledged it is never sent again.
    func testAnUnacknowledgedResultIsResentAfterReconnectUntilAcknowledged() throws {
        let log = LogCapture()
        var c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        let endpoint = c.boundEndpoint
        let w = try WorkerEndpoint(connect: endpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, liveness: 10, logger: log.logger)
        w.reconnectInitial = 0.05
        w.reconnectMax = 0.2
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        let a = MessagingFixtures.assignment(shard: 41)
        let expected = WireMessage.result(MessagingFixtures.result(for: a))
        try c.send(.assign(a), to: ready.peer)
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isResult })?.message, expected)
        let sent = Date().addingTimeInterval(2)
        while w.unacknowledgedReports == 0 && Date() < sent { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(w.unacknowledgedReports, 1)
        // The coordinator goes away without acknowledging; a new one comes up on the same port.
        c.close()
        Thread.sleep(forTimeInterval: 0.2)
        c = try CoordinatorEndpoint(bind: endpoint, curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        guard let again = try MessagingFixtures.receive(c, timeout: 10, where: { $0.isResult }) else {
            return XCTFail("the RESULT was not re-sent: \(log.lines)")
        }
        XCTAssertEqual(again.message, expected)
        XCTAssertTrue(log.contains("re-sending 1 unacknowledged report(s)"), "\(log.lines)")
        try c.send(.ack(Acknowledgement(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, verdict: .recorded)), to: again.peer)
        let end = Date().addingTimeInterval(5)
        while w.unacknowledgedReports > 0 && Date() < end { _ = try c.receive(timeout: 0.05) }
        XCTAssertEqual(w.unacknowledgedReports, 0)
        // A third coordinator hears READY and REQUEST only: nothing acknowledged comes back.
        c.close()
        Thread.sleep(forTimeInterval: 0.2)
        c = try CoordinatorEndpoint(bind: endpoint, curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        defer { c.close() }
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 10, where: { $0.isReady }))
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 1) { _ in true }?.message, .request(credits: 1))
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.5) { $0.isResult })
    }

    /// On a connection that stays up, an unacknowledged report goes again every `resendInterval`.
    func testAnUnacknowledgedFailureIsResentPeriodically() throws {
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: .silent)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, liveness: 10, logger: .silent)
        XCTAssertGreaterThanOrEqual(w.resendInterval, 10, "the default waits well past a liveness window")
        w.resendInterval = 0.3
        let f = { (a: Assignment) in ShardFailure(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, reason: "disk full", retryable: true) }
        let runner = WorkerRunner(w) { .failed(f($0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        let a = MessagingFixtures.assignment(shard: 42)
        try c.send(.assign(a), to: ready.peer)
        let t0 = Date()
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isFailed })?.message, .failed(f(a)))
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isFailed })?.message, .failed(f(a)))
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.25)
        XCTAssertEqual(w.sessions, 1)
        try c.send(.ack(Acknowledgement(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, verdict: .recorded)), to: ready.peer)
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.8) { $0.isFailed }, "re-sent after its ACK")
        XCTAssertEqual(w.unacknowledgedReports, 0)
    }

    /// A dismissed worker confirms with its own DISCONNECT, which a dismissing endpoint
    /// delivers; a connection that is no known worker (one that missed its DISCONNECT) is
    /// answered with DISCONNECT while dismissing, and only then.
    func testDismissalIsConfirmedAndStrayConnectionsAreDismissed() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, liveness: 10, logger: log.logger)
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        // A bare DEALER that never said READY sends a HEARTBEAT: dropped, no answer.
        let (ctx, d) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d.close(); ctx.terminate() }
        try d.send(try WireCodec.encode(.heartbeat))
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.3) { _ in false })
        XCTAssertNil(try d.receive(dontWait: true))
        c.dismissing = true
        try c.send(.disconnect, to: ready.peer)
        let bye = try MessagingFixtures.receive(c, timeout: 5) { $0 == .disconnect }
        XCTAssertEqual(bye?.peer, ready.peer, "the worker confirms its dismissal")
        XCTAssertTrue(runner.join(timeout: 5))
        // While dismissing, the stray connection's next message is answered with DISCONNECT.
        try d.send(try WireCodec.encode(.request(credits: 1)))
        var answer: [[UInt8]]?
        let end = Date().addingTimeInterval(5)
        while answer == nil && Date() < end {
            _ = try c.receive(timeout: 0.05)
            answer = try d.receive(dontWait: true)
        }
        XCTAssertEqual(try answer.map { try WireCodec.decode($0) }, .disconnect)
        XCTAssertTrue(log.contains("while dismissing workers: answered DISCONNECT"), "\(log.lines)")
    }
}
