import Foundation
import XCTest
@testable import PipelineJobs
@testable import PipelineMessaging
import PipelineFiles

extension Ledger {
    /// A fresh ledger at `path` holding one synthetic job (job 1).
    static func withSyntheticJob(_ path: String, _ spec: SyntheticSpec, maxAttempts: Int = 20, leaseSeconds: Double = 600,
                                 busyTimeout: Double = 10) throws -> Ledger {
        let ledger = try Ledger(path: path, busyTimeout: busyTimeout)
        let data = try JobKinds.encode(spec)
        _ = try ledger.createJob(kind: "synthetic", spec: data, plan: try SyntheticKind().plan(spec: data),
                                 maxAttempts: maxAttempts, leaseSeconds: leaseSeconds)
        return ledger
    }
}

/// A `CoordinatorService` serving a ledger on loopback on its own thread, as `serve` does.
final class InProcessCoordinator: @unchecked Sendable {
    let endpoint: CoordinatorEndpoint
    let service: CoordinatorService
    let log = LogCapture()
    private let lock = NSLock()
    private var stopRequested = false
    private var finished = false
    private var thrown: Error?
    private let done = DispatchSemaphore(value: 0)

    init(ledger: Ledger, heartbeat: Double, liveness: Int) throws {
        endpoint = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: heartbeat,
                                           liveness: liveness, logger: log.logger)
        service = CoordinatorService(ledger: ledger, endpoint: endpoint, logger: log.logger)
        let t = Thread { [self] in
            do { try service.run { lock.lock(); defer { lock.unlock() }; return stopRequested } } catch {
                lock.lock(); thrown = error; lock.unlock()
            }
            lock.lock(); finished = true; lock.unlock()
            done.signal()
        }
        t.start()
    }

    /// True while `run` has neither returned nor thrown.
    var isServing: Bool { lock.lock(); defer { lock.unlock() }; return !finished }

    /// Stops the loop; returns what `run` threw, if anything.
    @discardableResult
    func stop() -> Error? {
        lock.lock(); stopRequested = true; lock.unlock()
        _ = done.wait(timeout: .now() + 10)
        endpoint.close()
        lock.lock(); defer { lock.unlock() }
        return thrown
    }
}

/// A real worker (`WorkerService`: shard runner + worker endpoint) on its own thread.
final class InProcessWorker {
    let service: WorkerService
    let runner: WorkerRunner

    init(connect: String, heartbeat: Double, liveness: Int, resendInterval: Double = 0.5) throws {
        service = try WorkerService(connect: connect, threads: 1, keysDirectory: nil, heartbeatInterval: heartbeat, liveness: liveness)
        service.endpoint.resendInterval = resendInterval
        let shards = service.runner
        runner = WorkerRunner(service.endpoint) { a in WorkOutcome(shards.run(kind: a.kind, payload: a.payload), for: a) }
    }

    var workerId: String { service.endpoint.hello.workerId }

    func stop() {
        service.endpoint.stop(graceful: false)
        XCTAssertTrue(runner.join(timeout: 10), "the worker did not stop")
    }
}

/// A DITP worker driven by hand over a raw DEALER: the test says what it sends. It answers
/// heartbeats while it waits, and notes when each heartbeat arrived.
final class RawWorker {
    let context: ZMQContext
    let socket: ZMQSocket
    let beat: Double
    private(set) var heartbeatTimes: [Double] = []
    private var lastSent = 0.0

    init(_ endpoint: String, beat: Double) throws {
        (context, socket) = try MessagingFixtures.rawDealer(endpoint)
        self.beat = beat
    }

    deinit {
        socket.close()
        context.terminate()
    }

    func send(_ m: WireMessage) throws { try socket.send(try WireCodec.encode(m)) }

    /// READY as a revision-3 worker with `session` (and `connection`, `holding`).
    func ready(_ id: String, session: String, connection: Int = 1, holding: [LeaseRef] = []) throws {
        try send(.ready(WorkerHello(workerId: id, hostname: "raw-host", pid: 4242, threads: 1, session: session,
                                    connection: connection, holding: holding)))
    }

    /// The next message other than HEARTBEAT within `timeout` seconds.
    func next(timeout: Double) throws -> WireMessage? {
        let end = monotonicNow() + timeout
        while true {
            let now = monotonicNow()
            if now - lastSent >= beat {
                try send(.heartbeat)
                lastSent = now
            }
            while let frames = try socket.receive(dontWait: true, maxFrames: 8, maxBytes: 32 << 20) {
                let m = try WireCodec.decode(frames)
                if m == .heartbeat { heartbeatTimes.append(monotonicNow()); continue }
                return m
            }
            if now >= end { return nil }
            _ = try ZMQPoll.readable([.socket(socket)], timeout: min(beat / 2, end - now))
        }
    }

    /// Keeps the connection alive (heartbeats both ways) for `seconds`; fails on any other message.
    func idle(_ seconds: Double) throws {
        if let m = try next(timeout: seconds) { XCTFail("unexpected \(m.command) while idle") }
    }

    /// REQUEST(1) and the ASSIGN it brings, with its shard task.
    func lease() throws -> (Assignment, ShardTask) {
        try send(.request(credits: 1))
        guard case .assign(let a)? = try next(timeout: 10) else {
            XCTFail("no ASSIGN")
            throw CocoaError(.userCancelled)
        }
        return (a, try JSONDecoder().decode(ShardTask.self, from: a.payload))
    }

    /// Sends a RESULT and returns the ACK's verdict.
    func report(_ r: ShardResult) throws -> AckVerdict? {
        try send(.result(r))
        while let m = try next(timeout: 15) {
            if case .ack(let k) = m, k.jobId == r.jobId, k.shardId == r.shardId, k.attempt == r.attempt { return k.verdict }
        }
        return nil
    }

    /// The longest wait between two heartbeats received so far (s).
    var longestHeartbeatGap: Double {
        zip(heartbeatTimes.dropFirst(), heartbeatTimes).map { $0 - $1 }.max() ?? 0
    }
}

extension ShardResult {
    init(_ a: Assignment, outputs: [FileDigest], itemErrors: [ItemError] = [], metrics: [String: Double] = [:]) {
        self.init(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt,
                  outputs: outputs.map { OutputRecord(path: $0.path, size: $0.size, sha256: $0.sha256) },
                  itemErrors: itemErrors, metrics: metrics)
    }
}
