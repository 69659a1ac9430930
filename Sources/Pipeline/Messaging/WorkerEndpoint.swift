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

    private let curve: CurveClientKeys?
    private let context: ZMQContext
    private let wake: WakePipe
    private let state = NSCondition()
    // Guarded by `state`:
    private var queued: [Assignment] = []
    private var inFlight: [Assignment] = []
    private var reports = WorkerReports()
    private var stopMode: StopMode?
    private var stopRequestedAt: Double?
    private var started = false
    private var poolShutdown = false
    private var sessionsOpened = 0

    private enum StopMode { case graceful, abandon }

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
    public func run(handler: @escaping (Assignment) -> WorkOutcome) throws {
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
    private var lastHeard = 0.0

    private func orphaned() -> Bool {
        guard let giveUpAfter else { return false }
        return monotonicNow() - lastHeard > giveUpAfter
    }

    private func giveUp() {
        gaveUp = true
        logger.log(level: .error, "no coordinator at \(endpoint) for \(String(format: "%.0f", giveUpAfter ?? 0)) s: giving up")
        abandonAll(report: nil)
    }

    private enum SessionEnd {
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
    private func send(_ message: WireMessage, on socket: ZMQSocket) throws -> Bool {
        do {
            try socket.send(try WireCodec.encode(message, maxBytes: maxMessageBytes), dontWait: true)
            return true
        } catch let e as MessagingError where e.isWouldBlock {
            return false
        }
    }

    private func session(_ socket: ZMQSocket, monitor: SocketMonitor, backoff: inout Double) throws -> SessionEnd {
        let window = Double(liveness) * heartbeatInterval
        // Until the TCP connection exists, silence proves nothing: libzmq keeps retrying the
        // connect with its own back-off (ZMQ_RECONNECT_IVL..IVL_MAX), and the liveness clock
        // starts at CONNECTED. A worker started before its coordinator joins when it comes up.
        var reportedHandshake = false
        var connected = false
        var reportedWaiting = false
        state.lock()
        var ready = hello
        if (hello.revision ?? 1) >= 3 {
            ready.connection = sessionsOpened
            // Everything this process still answers for: the coordinator releases the rest.
            let held = (inFlight + queued).map { LeaseRef(jobId: $0.jobId, shardId: $0.shardId, attempt: $0.attempt) }
                + reports.pendingKeys.map { LeaseRef(jobId: $0.jobId, shardId: $0.shardId, attempt: $0.attempt) }
            ready.holding = Array(Set(held)).sorted { ($0.jobId, $0.shardId, $0.attempt) < ($1.jobId, $1.shardId, $1.attempt) }
        }
        state.unlock()
        _ = try send(.ready(ready), on: socket)
        state.lock()
        // Reports the last connection did not see acknowledged go again (the coordinator may
        // have died before its ledger had them, or restarted). The REQUEST below asks for
        // every free credit, so nothing waiting here asks for more.
        let resending = reports.reopen()
        let free = stopMode == nil ? credits - inFlight.count - queued.count : 0
        state.unlock()
        if resending > 0 { logger.log(level: .info, "re-sending \(resending) unacknowledged report(s) on the new connection") }
        if free > 0 { _ = try send(.request(credits: free), on: socket) }
        var deadline = monotonicNow() + window
        var nextHeartbeat = monotonicNow() + heartbeatInterval
        while true {
            // 1. Everything the coordinator sent.
            while true {
                let frames: [[UInt8]]?
                do {
                    frames = try socket.receive(dontWait: true, maxFrames: WireCodec.frameCount + 1,
                                                maxBytes: maxMessageBytes + 1024)
                } catch let e as MessagingError {
                    if case .zmq = e { throw e }
                    logger.log(level: .warning, "dropped a message from the coordinator: \(e)")
                    continue
                }
                guard let frames else { break }
                let message: WireMessage
                do { message = try WireCodec.decode(frames, maxBytes: maxMessageBytes) } catch {
                    logger.log(level: .warning, "dropped a message from the coordinator: \(error)")
                    continue
                }
                guard message.command.sentByCoordinator else {
                    logger.log(level: .warning, "dropped \(message.command) from the coordinator: coordinators never send it")
                    continue
                }
                deadline = monotonicNow() + window
                lastHeard = monotonicNow()
                backoff = reconnectInitial
                connected = true   // whatever the monitor said: the coordinator is there
                switch message {
                case .assign(let a): accept(a)
                case .ack(let k): acknowledged(k)
                case .disconnect:
                    logger.log(level: .info, "the coordinator dismissed this worker (DISCONNECT)")
                    abandonAll(report: nil)
                    // Revision 2: confirm, so a coordinator on its way out knows this worker heard it.
                    _ = try? send(.disconnect, on: socket)
                    try? socket.setLinger(milliseconds: closeLinger)
                    return .finished
                default: break
                }
            }
            // 2. Finished work, each fresh report followed by a request for more; reports
            //    unacknowledged for `resendInterval` go again.
            state.lock()
            let sendTime = monotonicNow()
            var pending = reports.takeDue(now: sendTime, resendInterval: resendInterval)
            let stopping = stopMode != nil
            state.unlock()
            var sent: [WorkOutcome] = []
            while let report = pending.first {
                guard try send(report.outcome.message, on: socket) else { break }
                pending.removeFirst()
                sent.append(report.outcome)
                if report.asksForMore && !stopping { _ = try send(.request(credits: 1), on: socket) }
            }
            if !sent.isEmpty || !pending.isEmpty {
                state.lock()
                let dropped = reports.settle(unsent: pending, sent: sent, at: sendTime, limit: maxUnacknowledged)
                state.unlock()
                if dropped > 0 {
                    logger.log(level: .warning, "\(dropped) report(s) never acknowledged by the coordinator forgotten (is it older than DITP/1 revision 2?)")
                }
            }
            // 3. Heartbeat.
            var now = monotonicNow()
            if now >= nextHeartbeat {
                if connected { _ = try send(.heartbeat, on: socket) }
                nextHeartbeat = now + heartbeatInterval
            }
            // 4. Stop (a graceful one waits a while for the ACKs of what it sent).
            state.lock()
            let mode = stopMode
            let idle = inFlight.isEmpty && queued.isEmpty && !reports.hasUnsent && !awaitingAcks(connected: connected)
            state.unlock()
            if mode == .abandon || (mode == .graceful && idle) {
                abandonAll { outcome in _ = try? self.send(outcome.message, on: socket) }
                _ = try send(.disconnect, on: socket)
                try? socket.setLinger(milliseconds: closeLinger)
                logger.log(level: .info, "worker \(hello.workerId) stopped (\(mode == .abandon ? "abandoning running work" : "graceful"))")
                return .finished
            }
            // 5. Liveness.
            now = monotonicNow()
            if orphaned() {
                giveUp()
                return .finished
            }
            if now >= deadline {
                if connected { return .lost("no message from the coordinator for \(String(format: "%.1f", window)) s") }
                if !reportedWaiting {
                    reportedWaiting = true
                    logger.log(level: .warning, "the coordinator at \(endpoint) is not reachable yet; still trying")
                }
                deadline = now + window
            }
            let readable = try ZMQPoll.readable([.socket(socket), .fd(wake.readFD), .socket(monitor.pair)],
                                                timeout: max(0, min(nextHeartbeat, deadline) - now))
            if readable[1] { wake.drain() }
            if readable[2] {
                var dropped = false
                for e in monitor.drain() {
                    if e.isHandshakeFailure && !reportedHandshake {
                        reportedHandshake = true
                        logger.log(level: .error, e.isAuthFailure
                            ? "the coordinator at \(endpoint) refused this worker's CURVE key (\(e.summary)): add its .pub to the coordinator's workers/ allow-list"
                            : "handshake with \(endpoint) failed (\(e.summary)): check coordinator.pub and that both sides agree on CURVE")
                    }
                    if e.code == ZMQ_EVENT_DISCONNECTED { dropped = true }
                    if e.code == ZMQ_EVENT_CONNECTED && !connected {
                        connected = true
                        deadline = monotonicNow() + window
                        if reportedWaiting { logger.log(level: .info, "connected to the coordinator at \(endpoint)") }
                    }
                }
                // A failed handshake also disconnects; that case waits for the liveness window and
                // backs off, so a refused worker does not hammer the coordinator.
                if dropped && !reportedHandshake { return .lost("the connection to the coordinator dropped") }
            }
        }
    }

    /// Unacknowledged reports a graceful stop still waits for (caller holds `state`).
    private func awaitingAcks(connected: Bool) -> Bool {
        guard !reports.unacknowledged.isEmpty, connected else { return false }
        guard let since = stopRequestedAt else { return true }
        return monotonicNow() - since < ackWaitOnStop
    }

    /// An ACK: the coordinator has dealt with the report for good, so it is forgotten.
    private func acknowledged(_ k: Acknowledgement) {
        let key = k.reportKey
        state.lock()
        let known = reports.acknowledge(key)
        state.unlock()
        switch k.verdict {
        case .recorded: break
        case .duplicate: logger.log(level: .info, "the coordinator already had the report for \(key) (a re-send)")
        case .stale: logger.log(level: .warning, "the coordinator ignored the report for \(key): no longer its current lease")
        case .rejected: logger.log(level: .warning, "the coordinator rejected the outputs reported for \(key)")
        }
        if !known { logger.log(level: .debug, "ACK for \(key), which was not waiting for one") }
        wake.wake()
    }

    private func accept(_ a: Assignment) {
        state.lock()
        if stopMode != nil {
            reports.add(.failed(ShardFailure.stopping(a, reason: "not started: worker stopping")))
            state.unlock()
            wake.wake()
            return
        }
        if inFlight.count + queued.count >= credits {
            logger.log(level: .warning, "ASSIGN job \(a.jobId) shard \(a.shardId) beyond the \(credits) credit(s) granted: queued")
        }
        queued.append(a)
        state.signal()
        state.unlock()
    }

    /// Ends the pool; hands unsent outcomes and a FAILED (retryable) for every
    /// running or queued assignment to `report`.
    private func abandonAll(report: ((WorkOutcome) -> Void)?) {
        state.lock()
        let left = inFlight + queued
        queued.removeAll()
        inFlight.removeAll()
        // Reports waiting in the outbox go now (once); those already sent on this connection
        // are not repeated: nothing would be left to wait for their ACKs.
        let (unsent, unconfirmed) = reports.drain()
        poolShutdown = true
        state.broadcast()
        state.unlock()
        if unconfirmed > 0 { logger.log(level: .info, "leaving with \(unconfirmed) report(s) not acknowledged by the coordinator") }
        guard let report else { return }
        for outcome in unsent { report(outcome) }
        for a in left {
            report(.failed(ShardFailure.stopping(a, reason: "abandoned: worker stopping")))
        }
    }

    private func startPool(_ handler: @escaping (Assignment) -> WorkOutcome) {
        for i in 0..<credits {
            let t = Thread { [self] in poolLoop(handler) }
            t.name = "dit-work-\(i)"
            t.start()
        }
    }

    private func poolLoop(_ handler: (Assignment) -> WorkOutcome) {
        while true {
            state.lock()
            while queued.isEmpty && !poolShutdown { state.wait() }
            if poolShutdown {
                state.unlock()
                return
            }
            let a = queued.removeFirst()
            inFlight.append(a)
            state.unlock()
            let outcome = handler(a)
            state.lock()
            let index = inFlight.firstIndex { $0.jobId == a.jobId && $0.shardId == a.shardId && $0.attempt == a.attempt }
            if let index {
                inFlight.remove(at: index)
                reports.add(outcome)
            }
            state.unlock()
            wake.wake()
        }
    }
}
