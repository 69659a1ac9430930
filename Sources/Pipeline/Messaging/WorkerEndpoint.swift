import CZMQ
import Foundation
import Logging

/// What a worker's handler made of one assignment.
public enum WorkOutcome: Equatable, Sendable {
    case result(ShardResult)
    case failed(ShardFailure)

    var message: WireMessage {
        switch self {
        case .result(let r): return .result(r)
        case .failed(let f): return .failed(f)
        }
    }
}

/// The worker's side of DITP/1 (a DEALER), after zguide's Paranoid Pirate worker.
///
/// `run` owns the socket thread: it says READY, asks for `credits` assignments,
/// heartbeats every interval and treats `liveness` silent intervals as a lost
/// coordinator (new socket, READY again, exponential back-off from
/// `reconnectInitial` to `reconnectMax` seconds). Assignments run on `credits`
/// handler threads, so heartbeats keep flowing during long shards; each outcome
/// is sent back followed by a REQUEST for one more.
///
/// Reports are reliable (DITP/1 revision 2): each RESULT/FAILED stays in the worker
/// until the coordinator ACKs it, and is sent again on every new connection (a
/// coordinator that died or restarted after, or before, it arrived) and every
/// `resendInterval` on the same one. The coordinator's ledger makes the repeats
/// harmless (a RESULT for an attempt already done is acknowledged, not counted).
public final class WorkerEndpoint: @unchecked Sendable {
    public let endpoint: String
    public let hello: WorkerHello
    public let credits: Int
    public let heartbeatInterval: Double
    public let liveness: Int
    public let maxMessageBytes: Int
    public let logger: Logger
    /// The largest back-off by default; a coordinator's reconnect grace after a restart
    /// (`CoordinatorService.reconnectGrace`) is longer, so slow returners keep their leases.
    public static let defaultReconnectMax: Double = 32
    /// First and largest wait before reconnecting after the coordinator went silent (s). Set before `run`.
    public var reconnectInitial: Double = 1
    public var reconnectMax: Double = WorkerEndpoint.defaultReconnectMax
    /// When set, `run` gives up (abandoning its work) once no message has come from any
    /// coordinator for this long (s): a worker of an embedded `run` whose coordinator is gone.
    public var giveUpAfter: Double?
    /// True when `run` ended because of `giveUpAfter`.
    public private(set) var gaveUp = false
    /// How long `run` lets the final FAILED/DISCONNECT messages leave after a stop (ms).
    public var closeLinger: Int32 = 2000
    /// How long an unacknowledged RESULT/FAILED waits before it is sent again on the same
    /// connection (s); a new connection re-sends at once. Set before `run`.
    public var resendInterval: Double
    /// How long a graceful stop waits for the ACKs of reports already sent (s), while connected.
    public var ackWaitOnStop: Double
    /// Most reports kept unacknowledged (a coordinator that never acknowledges, e.g. one of
    /// revision 1); past it the oldest are forgotten with a warning.
    public var maxUnacknowledged = 4096

    let curve: CurveClientKeys?
    let context: ZMQContext
    let wake: WakePipe
    let state = NSCondition()
    // Guarded by `state`:
    var queued: [Assignment] = []
    var inFlight: [Assignment] = []
    var reports = WorkerReports()
    var stopMode: StopMode?
    var stopRequestedAt: Double?
    private var started = false
    var poolShutdown = false
    var sessionsOpened = 0

    enum StopMode { case graceful, abandon }

    public init(connect endpoint: String, hello: WorkerHello, curve: CurveClientKeys?, credits: Int = 1,
                heartbeatInterval: Double = 1, liveness: Int = 3,
                maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes, insecure: Bool = false,
                logger: Logger = Logger(label: "dit.messaging")) throws {
        guard credits >= 1, heartbeatInterval > 0, liveness >= 1 else {
            throw MessagingError.invalidUse("credits \(credits), heartbeat interval \(heartbeatInterval) s and liveness \(liveness) must be positive")
        }
        if curve == nil && !insecure && Curve.requiredFor(endpoint: endpoint) {
            throw MessagingError.curveRequired(endpoint: endpoint)
        }
        self.endpoint = endpoint
        var hello = hello
        if hello.session == nil && (hello.revision ?? 1) >= 3 { hello.session = WorkerCredential.newSessionToken() }
        self.hello = hello
        self.curve = curve
        self.credits = credits
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        let window = Double(liveness) * heartbeatInterval
        resendInterval = max(10, 10 * window)
        ackWaitOnStop = window
        context = try ZMQContext()
        wake = try WakePipe()
    }

    /// RESULT/FAILED reports sent and not yet acknowledged by the coordinator.
    public var unacknowledgedReports: Int {
        state.lock(); defer { state.unlock() }
        return reports.unacknowledged.count
    }

    /// True once `stop` was called; long handlers may poll it to give up early.
    public var isStopping: Bool {
        state.lock(); defer { state.unlock() }
        return stopMode != nil
    }

    /// How many connections `run` has opened (1 + reconnects).
    public var sessions: Int {
        state.lock(); defer { state.unlock() }
        return sessionsOpened
    }

    /// Stops `run` (the SIGTERM path; callable from any thread, more than once).
    /// Graceful: running shards finish and are reported. Not graceful: running
    /// shards are reported FAILED (retryable) at once. Either way assignments not
    /// yet started are returned as FAILED (retryable), then DISCONNECT is sent.
    public func stop(graceful: Bool) {
        state.lock()
        if !graceful || stopMode == nil { stopMode = graceful ? .graceful : .abandon }
        if stopRequestedAt == nil { stopRequestedAt = monotonicNow() }
        for a in queued {
            reports.add(.failed(ShardFailure.stopping(a, reason: "not started: worker stopping")))
        }
        queued.removeAll()
        state.broadcast()
        state.unlock()
        wake.wake()
    }

    /// Runs until `stop` or a DISCONNECT from the coordinator; calls `handler` off
    /// the socket thread for each assignment. Throws only for errors that make the
    /// endpoint unusable (a bad endpoint string, a libzmq failure).
    public func run(handler: @escaping @Sendable (Assignment) -> WorkOutcome) throws {
        state.lock()
        guard !started else {
            state.unlock()
            throw MessagingError.invalidUse("WorkerEndpoint.run called twice")
        }
        started = true
        let stoppedEarly = stopMode != nil
        state.unlock()
        if stoppedEarly { return }
        startPool(handler)
        defer {
            state.lock()
            poolShutdown = true
            state.broadcast()
            state.unlock()
            context.terminate()
        }
        var backoff = reconnectInitial
        lastHeard = monotonicNow()
        while true {
            let (socket, monitor) = try openSocket()
            let outcome: SessionEnd
            do {
                defer { monitor.close() }
                outcome = try session(socket, monitor: monitor, backoff: &backoff)
            } catch {
                try? socket.setLinger(milliseconds: 0)
                socket.close()
                throw error
            }
            switch outcome {
            case .finished:
                socket.close()
                return
            case .lost(let why):
                try? socket.setLinger(milliseconds: 0)
                socket.close()
                logger.log(level: .warning, "\(why): reconnecting to \(endpoint) in \(String(format: "%.1f", backoff)) s")
                // Sleep out the back-off; only a stop cuts it short (finished shards wait in the outbox).
                let until = monotonicNow() + backoff
                var mode: StopMode?
                var busy = false
                while true {
                    state.lock()
                    mode = stopMode
                    busy = !inFlight.isEmpty || reports.hasUnsent || awaitingAcks(connected: true)
                    state.unlock()
                    let left = until - monotonicNow()
                    if mode != nil || left <= 0 || orphaned() { break }
                    _ = try ZMQPoll.readable([.fd(wake.readFD)], timeout: left)
                    wake.drain()
                }
                backoff = min(backoff * 2, reconnectMax)
                if orphaned() {
                    giveUp()
                    return
                }
                // With no coordinator to report to, a stop ends here unless finished work is waiting to go out.
                if mode == .abandon || (mode == .graceful && !busy) { return }
            }
        }
    }

    /// When the last message from a coordinator arrived (socket thread only).
    var lastHeard = 0.0

    func orphaned() -> Bool {
        guard let giveUpAfter else { return false }
        return monotonicNow() - lastHeard > giveUpAfter
    }

    func giveUp() {
        gaveUp = true
        logger.log(level: .error, "no coordinator at \(endpoint) for \(String(format: "%.0f", giveUpAfter ?? 0)) s: giving up")
        abandonAll(report: nil)
    }

    enum SessionEnd {
        case finished
        /// The connection is gone (the reason, for the log).
        case lost(String)
    }

    /// A new DEALER, its monitor (attached before connecting, so no event is missed) and the connect.
    private func openSocket() throws -> (ZMQSocket, SocketMonitor) {
        let s = try ZMQSocket(context: context, type: .dealer)
        do {
            try s.setLinger(milliseconds: 0)
            try s.setMaxMessageSize(Int64(maxMessageBytes + 1024))
            try s.setSendHighWaterMark(10_000)
            try s.setReceiveHighWaterMark(10_000)
            let ivl = Int32(max(10, min(reconnectInitial, 60) * 1000))
            try s.setReconnectInterval(milliseconds: ivl, max: Int32(max(Double(ivl), min(reconnectMax, 600) * 1000)))
            if let curve {
                try s.setCurveClient(publicKey: curve.publicKey, secretKey: curve.secretKey, serverPublicKey: curve.serverPublicKey)
            }
            if endpoint.contains("[") { try s.setOption(ZMQ_IPV6, Int32(1), name: "ZMQ_IPV6") }
        } catch {
            s.close()
            throw error
        }
        // DISCONNECTED reports a dropped connection at once (a killed coordinator closes its
        // TCP connections); CONNECTED starts the liveness clock; handshake failures (CURVE
        // refusals, which libzmq handles silently) get logged.
        let monitor: SocketMonitor
        do {
            monitor = try SocketMonitor(s, events: SocketMonitor.handshakeEvents | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED)
        } catch {
            s.close()
            throw error
        }
        do { try s.connect(endpoint) } catch {
            monitor.close()
            s.close()
            throw error
        }
        state.lock()
        sessionsOpened += 1
        state.unlock()
        return (s, monitor)
    }

    /// Sends one message; false when the queue is full (the caller retries later).
    func send(_ message: WireMessage, on socket: ZMQSocket) throws -> Bool {
        do {
            try socket.send(try WireCodec.encode(message, maxBytes: maxMessageBytes), dontWait: true)
            return true
        } catch let e as MessagingError where e.isWouldBlock {
            return false
        }
    }
}
