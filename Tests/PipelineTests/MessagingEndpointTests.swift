import Foundation
import Logging
import XCTest
@testable import PipelineMessaging
@testable import PipelineTensor

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
        // Random frames from the same connection (their log lines are rate-limited).
        var rng = SplitMix64(seed: 42)
        for _ in 0..<300 {
            let frames = (0..<(1 + Int(rng.next() % 5))).map { _ in (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            try d.send(frames)
        }
        try d.send(try WireCodec.encode(.request(credits: 3)))
        let afterFuzz = try MessagingFixtures.receive(c, timeout: 5) { _ in true }
        XCTAssertEqual(afterFuzz?.message, .request(credits: 3))
        XCTAssertLessThan(log.lines.count, 40, "drop lines must be rate-limited")
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
        XCTAssertNil(c.clientKey(of: got.peer), "no CURVE, no key")
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
        var c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        let endpoint = c.boundEndpoint
        let w = try WorkerEndpoint(connect: endpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, liveness: 10, logger: log.logger)
        w.reconnectInitial = 0.05
        w.reconnectMax = 0.4
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }))
        c.close()
        Thread.sleep(forTimeInterval: 0.2)
        c = try CoordinatorEndpoint(bind: endpoint, curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        defer { c.close() }
        XCTAssertEqual(c.boundEndpoint, endpoint)
        guard let ready = try MessagingFixtures.receive(c, timeout: 10, where: { $0.isReady }) else {
            return XCTFail("the worker did not come back: \(log.lines)")
        }
        XCTAssertGreaterThanOrEqual(w.sessions, 2)
        XCTAssertTrue(log.contains("the connection to the coordinator dropped: reconnecting"), "\(log.lines)")
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
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil, credits: 2,
                                   heartbeatInterval: beat, liveness: 10, logger: log.logger)
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
        XCTAssertEqual(failed?.message, .failed(.stopping(a, reason: "abandoned: worker stopping")))
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5) { _ in true }?.message, .disconnect)
        XCTAssertTrue(runner.join(timeout: 2))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2)
    }

    func testGracefulStopFinishesTheRunningShardFirst() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: beat, liveness: 10, logger: log.logger)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: beat, liveness: 10, logger: log.logger)
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
        XCTAssertTrue(seen.contains(.failed(.stopping(b, reason: "not started: worker stopping"))), "\(seen)")
        XCTAssertEqual(seen.last, .disconnect, "\(log.lines)")
        XCTAssertTrue(runner.join(timeout: 5))
    }
}

/// Liveness judged fairly when the coordinator loop is slow, and the SIGTERM path.
final class MessagingStopTests: XCTestCase {
    func testASlowCoordinatorLoopDoesNotExpireALiveWorker() throws {
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 0.1, liveness: 3, logger: .silent)
        defer { c.close() }
        // The worker tolerates the coordinator's pause (window 2 s); the coordinator's window is 0.3 s.
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: 0.1, liveness: 20, logger: .silent)
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }))
        Thread.sleep(forTimeInterval: 0.8)   // e.g. a long ledger transaction
        XCTAssertEqual(c.expiredPeers(), [], "queued heartbeats prove the worker alive")
        XCTAssertEqual(c.connectedPeers.count, 1)
    }

    func testStopSignalsFinishThenAbandon() throws {
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        defer { c.close() }
        let log = LogCapture()
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: 0.1, liveness: 10, logger: log.logger)
        // SIGUSR2 stands in for SIGTERM so a mistake cannot kill the test process.
        let signals = try StopSignals(worker: w, signals: [SIGUSR2], grace: nil, logger: log.logger)
        defer { signals.cancel() }
        let started = DispatchSemaphore(value: 0)
        let runner = WorkerRunner(w) { a in
            started.signal()
            Thread.sleep(forTimeInterval: 30)
            return .result(MessagingFixtures.result(for: a))
        }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        let a = MessagingFixtures.assignment(shard: 41)
        try c.send(.assign(a), to: ready.peer)
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        kill(getpid(), SIGUSR2)
        // Graceful: the worker keeps its shard (nothing arrives but heartbeats) ...
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.5) { $0.isFailed || $0 == .disconnect })
        XCTAssertTrue(w.isStopping)
        XCTAssertFalse(runner.join(timeout: 0))
        // ... until the second signal abandons it.
        kill(getpid(), SIGUSR2)
        let failed = try MessagingFixtures.receive(c, timeout: 5) { !$0.isRequest }
        XCTAssertEqual(failed?.message, .failed(.stopping(a, reason: "abandoned: worker stopping")))
        XCTAssertEqual(try MessagingFixtures.receive(c, timeout: 5) { _ in true }?.message, .disconnect)
        XCTAssertTrue(runner.join(timeout: 5))
        XCTAssertEqual(signals.count, 2)
        XCTAssertTrue(log.contains("again: abandoning"), "\(log.lines)")
    }

    func testGracePeriodEscalatesToAbandon() throws {
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        defer { c.close() }
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: nil,
                                   heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        let signals = try StopSignals(worker: w, signals: [SIGUSR2], grace: 0.3, logger: .silent)
        defer { signals.cancel() }
        let started = DispatchSemaphore(value: 0)
        let runner = WorkerRunner(w) { a in
            started.signal()
            Thread.sleep(forTimeInterval: 30)
            return .result(MessagingFixtures.result(for: a))
        }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        try c.send(.assign(MessagingFixtures.assignment(shard: 51)), to: ready.peer)
        XCTAssertEqual(started.wait(timeout: .now() + 5), .success)
        let t0 = Date()
        kill(getpid(), SIGUSR2)
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 5) { $0.isFailed })
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.25)
        XCTAssertTrue(runner.join(timeout: 5))
    }
}

/// Several workers pulling with credits over an ipc:// endpoint.
final class MessagingCreditTests: XCTestCase {
    func testEveryShardIsDispatchedOnceAcrossWorkersWithCredits() throws {
        let dir = Fixtures.tempDir("dit-ipc")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try CoordinatorEndpoint(bind: "ipc://\(dir)/coordinator.sock", curve: nil, heartbeatInterval: 0.2, liveness: 10, logger: .silent)
        defer { c.close() }
        XCTAssertEqual(c.boundEndpoint, "ipc://\(dir)/coordinator.sock")
        var runners: [WorkerRunner] = []
        for i in 0..<3 {
            let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello("w\(i)"), curve: nil,
                                       credits: 2, heartbeatInterval: 0.2, liveness: 10, logger: .silent)
            runners.append(WorkerRunner(w) { a in
                Thread.sleep(forTimeInterval: Double(a.shardId % 3) * 0.001)
                return .result(ShardResult(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, outputs: [],
                                           metrics: ["worker": Double(i)]))
            })
        }
        defer {
            for r in runners { r.worker.stop(graceful: false) }
            for r in runners { XCTAssertTrue(r.join(timeout: 5)) }
        }
        let total: Int64 = 300
        var next: Int64 = 0
        var outstanding: [PeerID: Int] = [:]
        var done: [Int64: Int] = [:]
        var byWorker: [Double: Int] = [:]
        let end = Date().addingTimeInterval(20)
        while done.count < total && Date() < end {
            guard let (peer, message) = try c.receive(timeout: 1) else { continue }
            switch message {
            case .ready: outstanding[peer] = 0
            case .request(let n):
                XCTAssertTrue(n == 1 || n == 2, "a fresh worker asks for all its credits, later one at a time: \(n)")
                for _ in 0..<n where next < total {
                    try c.send(.assign(Assignment(jobId: 9, shardId: next, attempt: 1, kind: "noop", payload: Data())), to: peer)
                    outstanding[peer, default: 0] += 1
                    next += 1
                }
                XCTAssertLessThanOrEqual(outstanding[peer] ?? 0, 2, "a worker never holds more than its credits")
            case .result(let r):
                done[r.shardId, default: 0] += 1
                byWorker[r.metrics["worker"] ?? -1, default: 0] += 1
                outstanding[peer, default: 0] -= 1
            default: XCTFail("unexpected \(message)")
            }
        }
        XCTAssertEqual(done.count, Int(total))
        XCTAssertTrue(done.values.allSatisfy { $0 == 1 }, "a shard reported twice")
        XCTAssertEqual(Set(byWorker.keys), [0, 1, 2], "every worker took part: \(byWorker)")
    }
}

extension MessagingCreditTests {
    func testDispatchBenchmarkCompletes() throws {
        let f = try DispatchBenchmark.run(workers: 2, credits: 2, shards: 200)
        XCTAssertEqual(f.shards, 200)
        XCTAssertGreaterThan(f.perSecond, 0)
    }
}

/// The Paranoid Pirate liveness path and reconnect bookkeeping.
final class MessagingLivenessTests: XCTestCase {
    func testWorkerReconnectsWhenTheCoordinatorGoesSilent() throws {
        // A bare ROUTER that accepts connections and never answers: no DISCONNECTED event,
        // only silence, so the worker must rely on its liveness count.
        let ctx = try ZMQContext()
        let router = try ZMQSocket(context: ctx, type: .router)
        try router.setLinger(milliseconds: 0)
        try router.bind("tcp://127.0.0.1:0")
        let endpoint = try router.lastEndpoint()
        defer { router.close(); ctx.terminate() }
        let log = LogCapture()
        let w = try WorkerEndpoint(connect: endpoint, hello: MessagingFixtures.hello("lonely"), curve: nil,
                                   heartbeatInterval: 0.1, logger: log.logger)
        w.reconnectInitial = 0.05
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        var readies: [[UInt8]] = []
        let end = Date().addingTimeInterval(5)
        while readies.count < 2 && Date() < end {
            _ = try ZMQPoll.readable([.socket(router)], timeout: 0.1)
            while let frames = try router.receive(dontWait: true) {
                if case .ready = try WireCodec.decode(Array(frames.dropFirst())) { readies.append(frames[0]) }
            }
        }
        XCTAssertEqual(readies.count, 2, "no second READY after the silence")
        if readies.count == 2 { XCTAssertNotEqual(readies[0], readies[1], "a reconnect uses a new socket") }
        XCTAssertTrue(log.contains("no message from the coordinator for 0.3 s: reconnecting"), "\(log.lines)")
    }

    func testAReconnectedWorkerSupersedesItsOldPeer() throws {
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 5, logger: log.logger)
        defer { c.close() }
        let (ctx1, d1) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d1.close(); ctx1.terminate() }
        let (ctx2, d2) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { d2.close(); ctx2.terminate() }
        try d1.send(try WireCodec.encode(.ready(MessagingFixtures.hello("same"))))
        guard let first = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        try d2.send(try WireCodec.encode(.ready(MessagingFixtures.hello("same"))))
        guard let second = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        XCTAssertNotEqual(first.peer, second.peer)
        XCTAssertEqual(c.expiredPeers(), [first.peer])
        XCTAssertEqual(c.connectedPeers, [second.peer])
        XCTAssertTrue(log.contains("reconnected as peer \(second.peer)"))
        // Another worker with a different identity leaves both alone.
        try d1.send(try WireCodec.encode(.ready(MessagingFixtures.hello("other"))))
        XCTAssertNotNil(try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }))
        XCTAssertEqual(c.expiredPeers(), [])
    }

    func testAWorkerStartedBeforeItsCoordinatorJoinsWhenItComesUp() throws {
        // Reserve a free port, then leave it closed while the worker starts.
        var c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, logger: .silent)
        let endpoint = c.boundEndpoint
        c.close()
        let log = LogCapture()
        let w = try WorkerEndpoint(connect: endpoint, hello: MessagingFixtures.hello("early"), curve: nil,
                                   heartbeatInterval: 0.1, logger: log.logger)
        w.reconnectInitial = 0.05
        w.reconnectMax = 0.2
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        Thread.sleep(forTimeInterval: 1)   // several liveness windows of 0.3 s
        c = try CoordinatorEndpoint(bind: endpoint, curve: nil, heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        defer { c.close() }
        let t0 = Date()
        let ready = try MessagingFixtures.receive(c, timeout: 5) { $0.isReady }
        XCTAssertNotNil(ready)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.5)
        XCTAssertEqual(w.sessions, 1, "waiting for a first connection is not a lost coordinator")
        XCTAssertTrue(log.contains("not reachable yet"), "\(log.lines)")
        // Exactly one READY and one REQUEST: nothing stale piled up while waiting.
        let next = try MessagingFixtures.receive(c, timeout: 0.5) { _ in true }
        XCTAssertEqual(next?.message, .request(credits: 1))
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.3) { _ in true })
    }

    func testAKilledWorkerConnectionExpiresBeforeTheLivenessWindow() throws {
        let log = LogCapture()
        // Liveness window 10 s: only the dropped connection can expire the peer within the test.
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: 0.1, liveness: 100,
                                        logger: log.logger)
        defer { c.close() }
        let (ctx, d) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        try d.send(try WireCodec.encode(.ready(MessagingFixtures.hello("doomed"))))
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else { return XCTFail("no READY") }
        d.close()
        ctx.terminate()   // the TCP connection closes, as when the process is killed
        var expired: [PeerID] = []
        let end = Date().addingTimeInterval(3)
        while expired.isEmpty && Date() < end {
            _ = try c.receive(timeout: 0.05)
            expired = c.expiredPeers()
        }
        XCTAssertEqual(expired, [ready.peer])
        XCTAssertTrue(log.contains("worker doomed (peer \(ready.peer)) disconnected"), "\(log.lines)")
    }
}
