import CZMQ
import Foundation
import Metrics
import Logging

/// The coordinator's side of DITP/1: a ROUTER that tracks every worker
/// connection that said READY, heartbeats it, and reports it once it has been
/// silent for `liveness` heartbeat intervals.
///
/// Use from one thread (the coordinator loop). Malformed, oversized,
/// wrong-version and out-of-order messages are logged and dropped inside
/// `receive`; they never reach the caller.
public final class CoordinatorEndpoint {
    public let heartbeatInterval: Double
    public let liveness: Int
    public let maxMessageBytes: Int
    public let logger: Logger
    /// The endpoint libzmq bound (port 0 / `*` resolved), e.g. tcp://127.0.0.1:54321.
    public private(set) var boundEndpoint: String
    /// True when the ROUTER runs CURVE with the ZAP allow-list.
    public let isEncrypted: Bool

    private let context: ZMQContext
    private var router: ZMQSocket?
    private var zap: ZAPHandler?
    private var peers: [PeerID: PeerState] = [:]
    private var expired: [PeerID] = []
    private var inbox: [(peer: PeerID, message: WireMessage)] = []
    private var inboxHead = 0
    private var monitor: SocketMonitor?
    private let dropLog = LogLimiter()
    private let heartbeats = Counter(label: LoopMetric.heartbeats.rawValue)
    private var nextHeartbeat: Double
    /// Set on the way out (see `dismissing`).
    private var dismissAll = false
    /// Makes a blocked `receive` return early (`interrupt`, from any thread).
    private let wake: WakePipe

    struct PeerState {
        var hello: WorkerHello
        var lastSeen: Double
        /// The CURVE public key ZAP admitted the connection with (nil without CURVE).
        var clientKey: String?
        /// What the worker id is bound to (see `WorkerCredential`).
        var credential: WorkerCredential
        /// When a send found the connection gone (EHOSTUNREACH). The peer expires one
        /// heartbeat interval later, so messages it sent before closing are still read.
        var goneSince: Double?
    }

    /// Binds a ROUTER on `endpoint` (e.g. `tcp://*:5555`, `tcp://127.0.0.1:0`, `ipc:///tmp/x`).
    /// Without `curve`, a non-loopback endpoint is refused unless `insecure` is set.
    public init(bind endpoint: String, curve: CurveServerKeys?, heartbeatInterval: Double = 1, liveness: Int = 3,
                maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes, insecure: Bool = false,
                logger: Logger = Logger(label: "dit.messaging")) throws {
        guard heartbeatInterval > 0, liveness >= 1 else {
            throw MessagingError.invalidUse("heartbeat interval \(heartbeatInterval) s and liveness \(liveness) must be positive")
        }
        if curve == nil && !insecure && Curve.requiredFor(endpoint: endpoint) {
            throw MessagingError.curveRequired(endpoint: endpoint)
        }
        self.heartbeatInterval = heartbeatInterval
        self.liveness = liveness
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
        isEncrypted = curve != nil
        wake = try WakePipe()
        context = try ZMQContext()
        do {
            if let curve {
                // The handler must listen before the CURVE socket binds, or libzmq admits everyone.
                zap = try ZAPHandler(context: context, allowed: curve.allowedClientKeys, logger: logger)
            }
            let s = try ZMQSocket(context: context, type: .router)
            router = s
            try s.setLinger(milliseconds: 1000)
            try s.setRouterMandatory(true)
            try s.setMaxMessageSize(Int64(maxMessageBytes + 1024))
            try s.setSendHighWaterMark(10_000)
            try s.setReceiveHighWaterMark(10_000)
            if let curve {
                try s.setCurveServer(secretKey: curve.secretKey)
                try s.setZAPDomain(Curve.zapDomain)
                // Refuse clients when no ZAP handler answers (by default libzmq admits them).
                // A DRAFT option in libzmq 4.3 (Debian builds have it); without it the handler
                // thread above must simply never stop while the socket is open.
                do { try s.setOption(Curve.zapEnforceDomainOption, Int32(1), name: "ZMQ_ZAP_ENFORCE_DOMAIN") } catch {
                    logger.log(level: .warning, "this libzmq lacks ZMQ_ZAP_ENFORCE_DOMAIN: \(error)")
                }
            }
            if endpoint.contains("[") { try s.setOption(ZMQ_IPV6, Int32(1), name: "ZMQ_IPV6") }
            if curve != nil { monitor = try SocketMonitor(s, events: SocketMonitor.handshakeEvents) }
            try s.bind(endpoint)
            boundEndpoint = Self.resolved(try s.lastEndpoint(), requested: endpoint)
        } catch {
            monitor?.close()
            router?.close()
            router = nil
            zap?.stop()
            context.terminate()
            throw error
        }
        nextHeartbeat = monotonicNow() + heartbeatInterval
        logger.log(level: .info, "coordinator endpoint bound on \(boundEndpoint)\(isEncrypted ? " (CURVE)" : "")")
    }

    deinit { close() }

    /// libzmq's ZMQ_LAST_ENDPOINT (`tcp://0.0.0.0:P` for `tcp://*:0`).
    private static func resolved(_ last: String, requested: String) -> String { last.isEmpty ? requested : last }

    /// The READY data of a connected worker.
    public func hello(of peer: PeerID) -> WorkerHello? { peers[peer]?.hello }

    /// What a connected worker's id is bound to (its CURVE key and/or session token).
    public func credential(of peer: PeerID) -> WorkerCredential? { peers[peer]?.credential }

    /// A closure that makes a `receive` blocked on another thread return nil now; any thread
    /// may keep and call it (it holds the wake pipe, not the endpoint): work done off the
    /// coordinator's loop calls it when its result is ready.
    public var interrupter: @Sendable () -> Void {
        let w = wake
        return { w.wake() }
    }

    /// The CURVE public key (Z85) a connected worker was admitted with; nil without CURVE.
    /// READY's `workerId` is the worker's claim; this key is what authenticated it.
    public func clientKey(of peer: PeerID) -> String? { peers[peer]?.clientKey }

    /// Replaces the CURVE allow-list (e.g. after `keygen --worker NEW`, on SIGHUP).
    /// New handshakes use it; connections already admitted stay.
    public func setAllowedClientKeys(_ keys: Set<String>) throws {
        guard let zap else { throw MessagingError.invalidUse("setAllowedClientKeys on an endpoint without CURVE") }
        zap.setAllowed(keys)
    }

    /// Stops the ZAP handler while the socket stays open (tests: with no handler
    /// answering, ZMQ_ZAP_ENFORCE_DOMAIN must refuse every client).
    func stopZAPHandlerForTesting() {
        zap?.stop()
    }

    /// Workers that said READY and have not expired or disconnected.
    public var connectedPeers: [PeerID] { Array(peers.keys) }

    /// The coordinator is on its way out (`serve --exit-when-done`, the end of an embedded run).
    /// While set, a message from a connection that is not (or no longer) a known worker
    /// (one already dismissed that missed it, or one that lost its connection meanwhile
    /// and speaks on a new one before saying READY) is answered with DISCONNECT, and a
    /// DISCONNECT from a dismissed connection (a revision-2 worker's confirmation) is
    /// delivered to the caller instead of being dropped. READY is delivered as always,
    /// for the caller to dismiss.
    public var dismissing: Bool {
        get { dismissAll }
        set { dismissAll = newValue }
    }

    /// Waits up to `timeout` seconds for one message from a worker; nil on timeout.
    /// Sends heartbeats that fall due meanwhile. HEARTBEATs are consumed here.
    ///
    /// Call it often (at least every heartbeat interval): heartbeats to workers
    /// only leave from inside `receive`. Every waiting message is read before
    /// liveness is judged, so a slow caller never expires a live worker.
    public func receive(timeout: Double) throws -> (peer: PeerID, message: WireMessage)? {
        guard let router else { throw MessagingError.invalidUse("receive on a closed CoordinatorEndpoint") }
        let deadline = monotonicNow() + max(0, timeout)
        while true {
            try pump()
            if inboxHead < inbox.count {
                let m = inbox[inboxHead]
                inboxHead += 1
                if inboxHead == inbox.count { inbox.removeAll(keepingCapacity: true); inboxHead = 0 }
                return m
            }
            let now = monotonicNow()
            collectExpired(now: now)
            if now >= deadline { return nil }
            let ready = try ZMQPoll.readable([.socket(router), .fd(wake.readFD)], timeout: min(deadline, nextHeartbeat) - now)
            if ready[1] {
                wake.drain()
                try pump()
                if inboxHead == inbox.count { return nil }
            }
        }
    }

    /// Reads every waiting message into the inbox, sends due heartbeats and logs handshake failures.
    private func pump() throws {
        guard let router else { return }
        defer {
            // After reading: a worker that just said its last words and closed its socket
            // must have them read before a heartbeat finds its connection gone.
            if monotonicNow() >= nextHeartbeat { sendHeartbeats(now: monotonicNow()) }
        }
        if let monitor {
            // Refused keys are logged by the ZAP handler; this catches the other handshake failures.
            for e in monitor.drain() where e.isHandshakeFailure && !e.isAuthFailure {
                dropLog.log(logger, .warning, "refused a connection on \(e.endpoint): \(e.summary)")
            }
        }
        var n = 0
        while n < 100_000 {
            let frames: [[UInt8]]?
            var userID: String?
            do {
                frames = try router.receive(dontWait: true, maxFrames: WireCodec.frameCount + 1,
                                            maxBytes: maxMessageBytes + 1024, userID: &userID)
            } catch let e as MessagingError {
                if case .zmq = e { throw e }
                dropLog.log(logger, .warning, "dropped a message: \(e)")
                continue
            }
            guard let frames else { return }
            n += 1
            let now = monotonicNow()
            if let delivered = handle(frames, clientKey: userID, now: now) { inbox.append(delivered) }
            // A flood of messages (each decoded here) must not hold back the heartbeats.
            if now >= nextHeartbeat { sendHeartbeats(now: now) }
        }
    }

    private func handle(_ frames: [[UInt8]], clientKey: String?, now: Double) -> (peer: PeerID, message: WireMessage)? {
        guard let first = frames.first, !first.isEmpty else {
            dropLog.log(logger, .warning, "dropped a message without a peer identity")
            return nil
        }
        let peer = PeerID(bytes: first)
        let message: WireMessage
        do {
            message = try WireCodec.decode(Array(frames.dropFirst()), maxBytes: maxMessageBytes)
        } catch {
            dropLog.log(logger, .warning, "dropped a message from peer \(peer)\(describe(peer)): \(error)")
            return nil
        }
        if case .control(let request) = message {
            // A control client (submit/status/cancel/retry --coordinator): admitted like a worker
            // (ZAP, when CURVE is on), but it is not one: no READY, no heartbeats, one reply.
            logger.log(level: .info, "CONTROL \(request.operation.rawValue) from peer \(peer)\(clientKey.map { " with CURVE key \($0)" } ?? "")")
            return (peer, message)
        }
        guard message.command.sentByWorker else {
            dropLog.log(logger, .warning, "dropped \(message.command) from peer \(peer)\(describe(peer)): workers never send it")
            return nil
        }
        guard var state = peers[peer] else {
            if dismissAll {
                switch message {
                case .ready: break
                case .disconnect:
                    logger.log(level: .debug, "DISCONNECT from dismissed peer \(peer)")
                    return (peer, message)
                default:
                    logger.log(level: .info, "\(message.command) from peer \(peer), not a known worker, while dismissing workers: answered DISCONNECT")
                    if let frames = try? WireCodec.encode(.disconnect), let router {
                        _ = try? router.send([peer.bytes] + frames, dontWait: true)
                    }
                    return nil
                }
            }
            switch message {
            case .ready(let hello):
                let credential = WorkerCredential(clientKey: clientKey, hello: hello)
                for (old, s) in peers where s.hello.workerId == hello.workerId {
                    // Another process claiming a connected worker's id: refused (an admitted
                    // worker never takes over another's id, connection or leases).
                    guard s.credential == credential || s.goneSince != nil else {
                        dropLog.log(logger, .warning, "refused READY from peer \(peer) claiming worker id \(hello.workerId): that worker is connected as peer \(old) with another \(s.credential)")
                        return nil
                    }
                    // A READY from an older connection of the same process, read late: the newer stays.
                    if let mine = hello.connection, let current = s.hello.connection, mine < current {
                        dropLog.log(logger, .warning, "dropped a stale READY of worker \(hello.workerId) from peer \(peer) (connection \(mine); connection \(current) is peer \(old))")
                        return nil
                    }
                    // The worker reconnected (new socket, new identity) and left its old connection
                    // behind: report that one expired now rather than after the liveness window.
                    peers[old] = nil
                    expired.append(old)
                    logger.log(level: .info, "worker \(hello.workerId) reconnected as peer \(peer): peer \(old) expired")
                }
                peers[peer] = PeerState(hello: hello, lastSeen: now, clientKey: clientKey, credential: credential)
                logger.log(level: .info, "worker \(hello.workerId) (\(hello.hostname) pid \(hello.pid), \(hello.threads) threads) ready as peer \(peer)\(clientKey.map { " with CURVE key \($0)" } ?? "")")
                return (peer, message)
            case .disconnect:
                logger.log(level: .debug, "DISCONNECT from peer \(peer), which was already forgotten")
                return nil
            default:
                dropLog.log(logger, .warning, "dropped \(message.command) from unknown peer \(peer): it has not sent READY")
                return nil
            }
        }
        state.lastSeen = now
        peers[peer] = state
        switch message {
        case .heartbeat:
            heartbeats.increment()
            return nil
        case .ready:
            dropLog.log(logger, .warning, "dropped a second READY from peer \(peer)\(describe(peer))")
            return nil
        case .disconnect:
            peers[peer] = nil
            logger.log(level: .info, "worker \(state.hello.workerId) (peer \(peer)) disconnected")
            return (peer, message)
        default:
            return (peer, message)
        }
    }

    private func describe(_ peer: PeerID) -> String {
        peers[peer].map { " (worker \($0.hello.workerId))" } ?? ""
    }

    /// Sends `message` (ASSIGN, HEARTBEAT, DISCONNECT, ACK; CONTROL_REPLY to a control client) to one connection.
    /// Throws `.unreachable` when that connection is gone (the peer then also shows up,
    /// once, in `expiredPeers`) and `.wouldBlock` when its queue is full (nothing sent).
    public func send(_ message: WireMessage, to peer: PeerID) throws {
        guard let router else { throw MessagingError.invalidUse("send on a closed CoordinatorEndpoint") }
        guard message.command.sentByCoordinator else {
            throw MessagingError.invalidUse("the coordinator never sends \(message.command)")
        }
        let frames = [peer.bytes] + (try WireCodec.encode(message, maxBytes: maxMessageBytes))
        do {
            try router.send(frames, dontWait: true)
        } catch let e as MessagingError {
            if case let .zmq(_, code, _) = e, code == EHOSTUNREACH {
                // Reported once by `expiredPeers` (after a short grace), like any peer that left without DISCONNECT.
                markGone(peer)
                throw MessagingError.unreachable(peer)
            }
            if e.isWouldBlock { throw MessagingError.wouldBlock("to peer \(peer)") }
            throw e
        }
        if message == .disconnect { peers[peer] = nil }
    }

    /// Peers that left without DISCONNECT: silent for `liveness * heartbeatInterval`
    /// seconds, connection dropped, or superseded by a reconnect of the same worker
    /// process. Each is reported once and then forgotten (a later message from it
    /// must start with READY).
    public func expiredPeers() -> [PeerID] {
        // Messages already waiting prove their senders alive.
        do { try pump() } catch { logger.log(level: .error, "coordinator endpoint: \(error)") }
        if inboxHead == inbox.count { collectExpired(now: monotonicNow()) }
        defer { expired.removeAll() }
        return expired
    }

    private func collectExpired(now: Double) {
        let limit = Double(liveness) * heartbeatInterval
        for (peer, state) in peers {
            if let gone = state.goneSince, now - gone >= heartbeatInterval {
                peers[peer] = nil
                expired.append(peer)
                logger.log(level: .warning, "worker \(state.hello.workerId) (peer \(peer)) disconnected: expired")
            } else if now - state.lastSeen > limit {
                peers[peer] = nil
                expired.append(peer)
                logger.log(level: .warning, "worker \(state.hello.workerId) (peer \(peer)) silent for \(String(format: "%.1f", now - state.lastSeen)) s: expired")
            }
        }
    }

    private func markGone(_ peer: PeerID) {
        guard var state = peers[peer], state.goneSince == nil else { return }
        state.goneSince = monotonicNow()
        peers[peer] = state
        logger.log(level: .debug, "peer \(peer): connection gone")
    }

    private func sendHeartbeats(now: Double) {
        guard let router else { return }
        let frames = (try? WireCodec.encode(.heartbeat)) ?? []
        for (peer, state) in peers where state.goneSince == nil {
            do { try router.send([peer.bytes] + frames, dontWait: true) } catch {
                if case let MessagingError.zmq(_, code, _) = error, code == EHOSTUNREACH {
                    // The connection is gone (e.g. the worker process was killed): no need to wait out liveness.
                    markGone(peer)
                } else {
                    logger.log(level: .debug, "heartbeat to peer \(peer) not sent: \(error)")
                }
            }
        }
        nextHeartbeat = now + heartbeatInterval
    }

    /// Closes the socket (queued messages get up to 1 s to leave) and stops the ZAP handler.
    public func close() {
        guard router != nil else { return }
        monitor?.close()
        monitor = nil
        router?.close()
        router = nil
        zap?.stop()
        zap = nil
        context.terminate()
        peers.removeAll()
    }
}
