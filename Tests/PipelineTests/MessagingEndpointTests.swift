import Foundation
import XCTest
@testable import Pipeline

/// Coordinator and worker endpoints on loopback with short heartbeats (0.1 s, liveness 3).
final class MessagingEndpointTests: XCTestCase {
    let beat = 0.1

    func testGarbageIsDroppedAndTheEndpointKeepsServing() throws {
        let log = LogCapture()
        let cap = 64 << 10
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat,
                                        maxMessageBytes: cap, logger: log.logger)
        defer { c.close() }
        XCTAssertTrue(c.boundEndpoint.hasPrefix("tcp://127.0.0.1:"), c.boundEndpoint)
        XCTAssertNotEqual(c.boundEndpoint, "tcp://127.0.0.1:0")
        let (ctx, d) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d.close(); ctx.terminate() }
        let v = Array("DITP/1".utf8)
        let ready = try WireCodec.encode(.ready(MessagingFixtures.hello()))
        try d.send([[], Array("DITP/9".utf8), [4], []])                       // wrong version
        try d.send([[], v, [0x7f], []])                                      // unknown command
        try d.send([[], v, [1], Array(ready[3].prefix(20))])                 // truncated JSON
        try d.send([[], v])                                                  // too few frames
        try d.send([v, v, [4], []])                                          // no delimiter
        try d.send([[], v, [2], Array(#"{"credits":1}"#.utf8)])              // REQUEST before READY
        try d.send([[], v, [1], [UInt8](repeating: 0x20, count: cap + 500)]) // over the body cap, under ZMQ_MAXMSGSIZE
        try d.send(Array(repeating: [1], count: 40))                         // too many frames
        try d.send(ready)
        let first = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(first?.message, .ready(MessagingFixtures.hello()), "garbage must never reach the caller")
        try d.send(try WireCodec.encode(.assign(MessagingFixtures.assignment())))  // wrong direction
        try d.send(try WireCodec.encode(.request(credits: 2)))
        let next = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(next?.message, .request(credits: 2))
        XCTAssertEqual(next?.peer, first?.peer)
        for text in ["wrong protocol version", "unknown command byte 0x7f", "bad READY body", "2 frames, expected 4",
                     "not the empty delimiter", "REQUEST from unknown peer", "exceeds the \(cap)-byte limit",
                     "more than", "ASSIGN from peer", "workers never send it"] {
            XCTAssertTrue(log.contains(text), "no log line with \(text.debugDescription): \(log.lines)")
        }

        // A frame over ZMQ_MAXMSGSIZE: libzmq drops that connection; the endpoint serves on.
        let (ctx2, big) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { big.close(); ctx2.terminate() }
        try big.send([[], v, [1], [UInt8](repeating: 0x20, count: cap + 8192)])
        _ = try c.receive(timeout: 0.3)
        let (ctx3, d3) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d3.close(); ctx3.terminate() }
        try d3.send(try WireCodec.encode(.ready(MessagingFixtures.hello("w3"))))
        let third = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(third?.message, .ready(MessagingFixtures.hello("w3")))
        if let third { XCTAssertEqual(c.hello(of: third.peer)?.workerId, "w3") }
    }

    func testSilentPeerExpiresOnceAndIsHeartbeatedUntilThen() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 3,
                                        logger: log.logger)
        defer { c.close() }
        let (ctx, d) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d.close(); ctx.terminate() }
        try d.send(try WireCodec.encode(.ready(MessagingFixtures.hello("quiet"))))
        let start = Date()
        guard let got = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else {
            return XCTFail("no READY")
        }
        XCTAssertEqual(c.hello(of: got.peer)?.workerId, "quiet")
        var expired: [PeerID] = []
        while expired.isEmpty && Date().timeIntervalSince(start) < 5 {
            _ = try c.receive(timeout: 0.05)
            expired = c.expiredPeers()
        }
        let after = Date().timeIntervalSince(start)
        XCTAssertEqual(expired, [got.peer])
        XCTAssertGreaterThanOrEqual(after, 3 * beat * 0.9, "expired before the liveness window")
        XCTAssertTrue(log.contains("worker quiet (peer \(got.peer)) silent for"), "\(log.lines)")
        XCTAssertEqual(c.expiredPeers(), [], "reported once")
        XCTAssertNil(c.hello(of: got.peer))
        // The coordinator heartbeated the peer meanwhile.
        var beats = 0
        while let frames = try d.receive(dontWait: true) {
            if try WireCodec.decode(frames) == .heartbeat { beats += 1 }
        }
        XCTAssertGreaterThanOrEqual(beats, 2)
        // Once forgotten, the peer must start over with READY.
        try d.send(try WireCodec.encode(.heartbeat))
        try d.send(try WireCodec.encode(.request(credits: 1)))
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.3) { _ in true })
        XCTAssertTrue(log.contains("REQUEST from unknown peer"))
    }

    func testHeartbeatsFlowWhileAHandlerRunsPastTheLivenessWindow() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: log.logger)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, logger: log.logger)
        let runner = WorkerRunner(w) { a in
            Thread.sleep(forTimeInterval: 10 * 0.1)   // > 3 liveness windows of 0.3 s
            return .result(MessagingFixtures.result(for: a))
        }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        guard let req = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isRequest }) else { return XCTFail("no REQUEST") }
        XCTAssertEqual(req.message, .request(credits: 1))
        let a = MessagingFixtures.assignment()
        let sent = Date()
        try c.send(.assign(a), to: ready.peer)
        var result: WireMessage?
        while result == nil && Date().timeIntervalSince(sent) < 5 {
            if let got = try c.receive(timeout: 0.05) {
                XCTAssertEqual(got.peer, ready.peer)
                if got.message.isResult { result = got.message }
            }
            XCTAssertEqual(c.expiredPeers(), [], "the worker expired while its handler ran")
        }
        XCTAssertEqual(result, .result(MessagingFixtures.result(for: a)))
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(sent), 0.9)
        XCTAssertEqual(w.sessions, 1, "the worker reconnected: it missed the coordinator's heartbeats")
        // The worker asks for one more after reporting.
        let more = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(more?.message, .request(credits: 1))
        w.stop(graceful: true)
        let bye = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(bye?.message, .disconnect)
        XCTAssertTrue(runner.join(timeout: 5))
        XCTAssertNil(runner.error)
    }

    func testWorkerReconnectsToACoordinatorReboundOnTheSamePort() throws {
        let log = LogCapture()
        var c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: log.logger)
        let endpoint = c.boundEndpoint
        let w = try WorkerEndpoint(connect: endpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, logger: log.logger)
        w.reconnectInitial = 0.05
        w.reconnectMax = 0.4
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }))
        c.close()
        Thread.sleep(forTimeInterval: 0.2)
        c = try CoordinatorEndpoint(bind: endpoint, curve: nil, heartbeatInterval: beat, logger: log.logger)
        defer { c.close() }
        XCTAssertEqual(c.boundEndpoint, endpoint)
        guard let ready = try MessagingFixtures.receive(c, timeout: 10, where: { $0.isReady }) else {
            return XCTFail("the worker did not come back: \(log.lines)")
        }
        XCTAssertGreaterThanOrEqual(w.sessions, 2)
        XCTAssertTrue(log.contains("reconnecting in"))
        guard let req = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isRequest }) else { return XCTFail("no REQUEST") }
        XCTAssertEqual(req.peer, ready.peer)
        let a = MessagingFixtures.assignment(shard: 11)
        try c.send(.assign(a), to: ready.peer)
        let got = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isResult })
        XCTAssertEqual(got?.message, .result(MessagingFixtures.result(for: a)))
        // The coordinator dismisses the worker: run returns.
        try c.send(.disconnect, to: ready.peer)
        XCTAssertTrue(runner.join(timeout: 5))
        XCTAssertNil(runner.error)
    }

    func testStopAbandonsARunningShardWithARetryableFailure() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: log.logger)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil, credits: 2,
                                   heartbeatInterval: beat, logger: log.logger)
        let started = DispatchSemaphore(value: 0)
        let runner = WorkerRunner(w) { a in
            started.signal()
            while !w.isStopping { Thread.sleep(forTimeInterval: 0.01) }
            Thread.sleep(forTimeInterval: 3)   // ignores the stop for a while: must be abandoned, not awaited
            return .result(MessagingFixtures.result(for: a))
        }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5) { _ in true }?.message, .request(credits: 2))
        let a = MessagingFixtures.assignment(shard: 21)
        try c.send(.assign(a), to: ready.peer)
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        let t0 = Date()
        w.stop(graceful: false)
        let failed = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(failed?.message, .failed(ShardFailure(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt,
                                                            reason: "abandoned: worker stopping", retryable: true)))
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5) { _ in true }?.message, .disconnect)
        XCTAssertTrue(runner.join(timeout: 2))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2)
    }

    func testGracefulStopFinishesTheRunningShardFirst() throws {
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, logger: .silent)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, logger: .silent)
        let started = DispatchSemaphore(value: 0)
        let runner = WorkerRunner(w) { a in
            started.signal()
            Thread.sleep(forTimeInterval: 0.5)
            return .result(MessagingFixtures.result(for: a))
        }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        let a = MessagingFixtures.assignment(shard: 31)
        try c.send(.assign(a), to: ready.peer)
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        // A second assignment beyond the single credit arrives while stopping: it is handed back.
        let b = MessagingFixtures.assignment(shard: 32)
        w.stop(graceful: true)
        try c.send(.assign(b), to: ready.peer)
        var seen: [WireMessage] = []
        while seen.last != .disconnect, let got = try MessagingFixtures.receive(c, timeout: 5, where: { !$0.isRequest }) {
            seen.append(got.message)
        }
        XCTAssertTrue(seen.contains(.result(MessagingFixtures.result(for: a))), "\(seen)")
        XCTAssertTrue(seen.contains(.failed(ShardFailure(jobId: b.jobId, shardId: b.shardId, attempt: b.attempt,
                                                         reason: "not started: worker stopping", retryable: true))), "\(seen)")
        XCTAssertEqual(seen.last, .disconnect)
        XCTAssertTrue(runner.join(timeout: 5))
    }
}
