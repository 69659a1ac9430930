import Foundation

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
    public let logger: MessagingLogger
    /// The endpoint libzmq bound (port 0 / `*` resolved), e.g. tcp://127.0.0.1:54321.
    public private(set) var boundEndpoint: String
    /// True when the ROUTER runs CURVE with the ZAP allow-list.
    public let isEncrypted: Bool

    private let context: ZMQContext
    private var router: ZMQSocket?
    private var zap: ZAPHandler?
    private var peers: [PeerID: PeerState] = [:]
    private var expired: [PeerID] = []
    private var nextHeartbeat: Double

    struct PeerState {
        var hello: WorkerHello
        var lastSeen: Double
    }

    /// Binds a ROUTER on `endpoint` (e.g. `tcp://*:5555`, `tcp://127.0.0.1:0`, `ipc:///tmp/x`).
    /// Without `curve`, a non-loopback endpoint is refused unless `insecure` is set.
    public init(bind endpoint: String, curve: CurveServerKeys?, heartbeatInterval: Double = 1, liveness: Int = 3,
                maxMessageBytes: Int = WireCodec.defaultMaxMessageBytes, insecure: Bool = false,
                logger: MessagingLogger = .standardError) throws {
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
            }
            try s.bind(endpoint)
            boundEndpoint = Self.resolved(try s.lastEndpoint(), requested: endpoint)
        } catch {
            router?.close()
            router = nil
            zap?.stop()
            context.terminate()
            throw error
        }
        nextHeartbeat = monotonicNow() + heartbeatInterval
        logger.log(.info, "coordinator endpoint bound on \(boundEndpoint)\(isEncrypted ? " (CURVE)" : "")")
    }

    deinit { close() }

    /// `tcp://0.0.0.0:P` is what libzmq reports for `*`; a loopback request keeps its host.
    private static func resolved(_ last: String, requested: String) -> String { last.isEmpty ? requested : last }

    /// The READY data of a connected worker.
    public func hello(of peer: PeerID) -> WorkerHello? { peers[peer]?.hello }

    /// Workers that said READY and have not expired or disconnected.
    public var connectedPeers: [PeerID] { Array(peers.keys) }

    /// Waits up to `timeout` seconds for one message from a worker; nil on timeout.
    /// Sends heartbeats that fall due meanwhile. HEARTBEATs are consumed here.
    public func receive(timeout: Double) throws -> (peer: PeerID, message: WireMessage)? {
        guard let router else { throw MessagingError.invalidUse("receive on a closed CoordinatorEndpoint") }
        let deadline = monotonicNow() + max(0, timeout)
        while true {
            let now = monotonicNow()
            if now >= nextHeartbeat { sendHeartbeats(now: now) }
            collectExpired(now: now)
            let frames: [[UInt8]]?
            do {
                frames = try router.receive(dontWait: true, maxFrames: WireCodec.frameCount + 1,
                                            maxBytes: maxMessageBytes + 1024)
            } catch let e as MessagingError {
                if case .zmq = e { throw e }
                logger.log(.warning, "dropped a message: \(e)")
                continue
            }
            if let frames {
                if let delivered = handle(frames, now: monotonicNow()) { return delivered }
                continue
            }
            let after = monotonicNow()
            if after >= deadline { return nil }
            _ = try ZMQPoll.readable([.socket(router)], timeout: min(deadline, nextHeartbeat) - after)
        }
    }

    private func handle(_ frames: [[UInt8]], now: Double) -> (peer: PeerID, message: WireMessage)? {
        guard let first = frames.first, !first.isEmpty else {
            logger.log(.warning, "dropped a message without a peer identity")
            return nil
        }
        let peer = PeerID(bytes: first)
        let message: WireMessage
        do {
            message = try WireCodec.decode(Array(frames.dropFirst()), maxBytes: maxMessageBytes)
        } catch {
            logger.log(.warning, "dropped a message from peer \(peer)\(describe(peer)): \(error)")
            return nil
        }
        guard message.command.sentByWorker else {
            logger.log(.warning, "dropped \(message.command) from peer \(peer)\(describe(peer)): workers never send it")
            return nil
        }
        guard var state = peers[peer] else {
            switch message {
            case .ready(let hello):
                peers[peer] = PeerState(hello: hello, lastSeen: now)
                logger.log(.info, "worker \(hello.workerId) (\(hello.hostname) pid \(hello.pid), \(hello.threads) threads) ready as peer \(peer)")
                return (peer, message)
            case .disconnect:
                return nil
            default:
                logger.log(.warning, "dropped \(message.command) from unknown peer \(peer): it has not sent READY")
                return nil
            }
        }
        state.lastSeen = now
        peers[peer] = state
        switch message {
        case .heartbeat:
            return nil
        case .ready:
            logger.log(.warning, "dropped a second READY from peer \(peer)\(describe(peer))")
            return nil
        case .disconnect:
            peers[peer] = nil
            logger.log(.info, "worker \(state.hello.workerId) (peer \(peer)) disconnected")
            return (peer, message)
        default:
            return (peer, message)
        }
    }

    private func describe(_ peer: PeerID) -> String {
        peers[peer].map { " (worker \($0.hello.workerId))" } ?? ""
    }

    /// Sends `message` (ASSIGN, HEARTBEAT or DISCONNECT) to one worker connection.
    /// Throws `.unreachable` when that connection is gone and `.wouldBlock` when its queue is full.
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
                peers[peer] = nil
                throw MessagingError.unreachable(peer)
            }
            if e.isWouldBlock { throw MessagingError.wouldBlock("to peer \(peer)") }
            throw e
        }
        if message == .disconnect { peers[peer] = nil }
    }

    /// Peers silent for `liveness * heartbeatInterval` seconds. Each is reported
    /// once and then forgotten (a later message from it must start with READY).
    public func expiredPeers() -> [PeerID] {
        collectExpired(now: monotonicNow())
        defer { expired.removeAll() }
        return expired
    }

    private func collectExpired(now: Double) {
        let limit = Double(liveness) * heartbeatInterval
        for (peer, state) in peers where now - state.lastSeen > limit {
            peers[peer] = nil
            expired.append(peer)
            logger.log(.warning, "worker \(state.hello.workerId) (peer \(peer)) silent for \(String(format: "%.1f", now - state.lastSeen)) s: expired")
        }
    }

    private func sendHeartbeats(now: Double) {
        guard let router else { return }
        let frames = (try? WireCodec.encode(.heartbeat)) ?? []
        for peer in peers.keys {
            do { try router.send([peer.bytes] + frames, dontWait: true) } catch {
                logger.log(.debug, "heartbeat to peer \(peer) not sent: \(error)")
            }
        }
        nextHeartbeat = now + heartbeatInterval
    }

    /// Closes the socket (queued messages get up to 1 s to leave) and stops the ZAP handler.
    public func close() {
        guard router != nil else { return }
        router?.close()
        router = nil
        zap?.stop()
        zap = nil
        context.terminate()
        peers.removeAll()
    }
}
