import Foundation
import Logging
import XCTest
@testable import PipelineMessaging

/// Collects an endpoint's log lines for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []

    var logger: Logger {
        var l = Logger(label: "test") { _ in CaptureHandler(capture: self) }
        l.logLevel = .debug
        return l
    }

    func append(_ line: String) { lock.lock(); storage.append(line); lock.unlock() }

    var lines: [String] {
        lock.lock(); defer { lock.unlock() }
        return storage
    }

    func contains(_ text: String) -> Bool { lines.contains { $0.contains(text) } }

    /// Records a plain log line (a coordinator service's `log`).
    func record(_ line: String) { lock.lock(); storage.append(line); lock.unlock() }
}

/// A swift-log handler that hands "[level] message" lines to a `LogCapture`.
struct CaptureHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { capture.append("[\(event.level.rawValue)] \(event.message)") }
}

/// Runs `WorkerEndpoint.run` on its own thread.
final class WorkerRunner: @unchecked Sendable {
    let worker: WorkerEndpoint
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var thrown: Error?
    private var finished = false

    init(_ worker: WorkerEndpoint, handler: @escaping (Assignment) -> WorkOutcome) {
        self.worker = worker
        let t = Thread { [self] in
            do { try worker.run(handler: handler) } catch {
                lock.lock(); thrown = error; lock.unlock()
            }
            lock.lock(); finished = true; lock.unlock()
            done.signal()
        }
        t.start()
    }

    /// Waits up to `timeout` seconds for `run` to return.
    func join(timeout: Double) -> Bool {
        lock.lock()
        if finished { lock.unlock(); return true }
        lock.unlock()
        return done.wait(timeout: .now() + timeout) == .success
    }

    var error: Error? {
        lock.lock(); defer { lock.unlock() }
        return thrown
    }
}

enum MessagingFixtures {
    static func hello(_ id: String = "w1", threads: Int = 2) -> WorkerHello {
        WorkerHello(workerId: id, hostname: "test-host", pid: getpid(), threads: threads,
                    capabilities: ["sample", "encode"], cachedModels: ["DiT-XL-2-256"])
    }

    static func assignment(shard: Int64 = 7, attempt: Int = 1) -> Assignment {
        Assignment(jobId: 3, shardId: shard, attempt: attempt, kind: "sample",
                   payload: Data(#"{"first":0,"count":16}"#.utf8))
    }

    static func result(for a: Assignment) -> ShardResult {
        ShardResult(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt,
                    outputs: [OutputRecord(path: "out/\(a.shardId).png", size: 1234, sha256: String(repeating: "ab", count: 32))],
                    itemErrors: [ItemError(item: 5, path: "in/bad.jpg", reason: "truncated JPEG")],
                    metrics: ["items_per_s": 12.5])
    }

    /// Receives until `accept` matches (other messages are returned in `seen`), or nil after `timeout`.
    static func receive(_ c: CoordinatorEndpoint, timeout: Double,
                        where accept: (WireMessage) -> Bool) throws -> (peer: PeerID, message: WireMessage)? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let got = try c.receive(timeout: 0.05), accept(got.message) { return got }
        }
        return nil
    }

    /// A bare DEALER for sending hand-made frames.
    static func rawDealer(_ endpoint: String) throws -> (ZMQContext, ZMQSocket) {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(context: ctx, type: .dealer)
        try s.setLinger(milliseconds: 0)
        try s.connect(endpoint)
        return (ctx, s)
    }
}

extension WireMessage {
    var isReady: Bool { if case .ready = self { return true }; return false }
    var isRequest: Bool { if case .request = self { return true }; return false }
    var isResult: Bool { if case .result = self { return true }; return false }
    var isFailed: Bool { if case .failed = self { return true }; return false }
}
