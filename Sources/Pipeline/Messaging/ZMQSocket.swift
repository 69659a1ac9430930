import CZMQ
import Foundation

/// A libzmq context. Sockets keep their context alive; `terminate()` (or the
/// last release) shuts it down after every socket of it is closed.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    private var terminated = false

    public init() throws {
        guard let h = zmq_ctx_new() else { throw MessagingError.last("zmq_ctx_new") }
        handle = h
    }

    /// Makes blocking calls on this context's sockets return ETERM (used to stop
    /// helper threads such as the ZAP handler).
    public func shutdown() {
        lock.lock(); defer { lock.unlock() }
        if !terminated { _ = zmq_ctx_shutdown(handle) }
    }

    /// Destroys the context; blocks until every socket of it is closed and its
    /// lingering messages are sent or dropped.
    public func terminate() {
        lock.lock()
        if terminated { lock.unlock(); return }
        terminated = true
        lock.unlock()
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    deinit { terminate() }
}

/// The socket types this project uses.
public enum ZMQSocketType: Int32 {
    case router, dealer, rep, req, pair

    var raw: Int32 {
        switch self {
        case .router: return ZMQ_ROUTER
        case .dealer: return ZMQ_DEALER
        case .rep: return ZMQ_REP
        case .req: return ZMQ_REQ
        case .pair: return ZMQ_PAIR
        }
    }
}

/// One libzmq socket (RAII: closed on `close()` or deinit). Not thread-safe:
/// use a socket from one thread at a time, as libzmq requires.
public final class ZMQSocket {
    private(set) var handle: UnsafeMutableRawPointer?
    public let context: ZMQContext
    public let type: ZMQSocketType

    public init(context: ZMQContext, type: ZMQSocketType) throws {
        guard let h = zmq_socket(context.handle, type.raw) else { throw MessagingError.last("zmq_socket") }
        self.context = context
        self.type = type
        handle = h
    }

    deinit { close() }

    /// Closes the socket. Pending outgoing messages are kept for the linger period.
    public func close() {
        if let h = handle { _ = zmq_close(h); handle = nil }
    }

    private func live(_ call: String) throws -> UnsafeMutableRawPointer {
        guard let h = handle else { throw MessagingError.invalidUse("\(call) on a closed socket") }
        return h
    }

    // MARK: options

    public func setOption(_ option: Int32, _ value: Int32, name: String) throws {
        let h = try live("zmq_setsockopt(\(name))")
        var v = value
        if zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) != 0 { throw MessagingError.last("zmq_setsockopt(\(name))") }
    }

    public func setOption(_ option: Int32, _ value: Int64, name: String) throws {
        let h = try live("zmq_setsockopt(\(name))")
        var v = value
        if zmq_setsockopt(h, option, &v, MemoryLayout<Int64>.size) != 0 { throw MessagingError.last("zmq_setsockopt(\(name))") }
    }

    public func setOption(_ option: Int32, bytes: [UInt8], name: String) throws {
        let h = try live("zmq_setsockopt(\(name))")
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(h, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw MessagingError.last("zmq_setsockopt(\(name))") }
    }

    /// Milliseconds to keep unsent messages after `close()` (0 drops them).
    public func setLinger(milliseconds: Int32) throws { try setOption(ZMQ_LINGER, milliseconds, name: "ZMQ_LINGER") }
    public func setRoutingID(_ id: [UInt8]) throws { try setOption(ZMQ_ROUTING_ID, bytes: id, name: "ZMQ_ROUTING_ID") }
    public func setSendHighWaterMark(_ n: Int32) throws { try setOption(ZMQ_SNDHWM, n, name: "ZMQ_SNDHWM") }
    public func setReceiveHighWaterMark(_ n: Int32) throws { try setOption(ZMQ_RCVHWM, n, name: "ZMQ_RCVHWM") }
    /// Largest inbound frame libzmq accepts; a peer sending more is disconnected.
    public func setMaxMessageSize(_ bytes: Int64) throws { try setOption(ZMQ_MAXMSGSIZE, bytes, name: "ZMQ_MAXMSGSIZE") }
    /// TCP reconnect interval and its exponential back-off ceiling (ms).
    public func setReconnectInterval(milliseconds: Int32, max: Int32) throws {
        try setOption(ZMQ_RECONNECT_IVL, milliseconds, name: "ZMQ_RECONNECT_IVL")
        try setOption(ZMQ_RECONNECT_IVL_MAX, max, name: "ZMQ_RECONNECT_IVL_MAX")
    }
    /// ROUTER: report EHOSTUNREACH for an unknown identity instead of dropping silently.
    public func setRouterMandatory(_ on: Bool) throws { try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0), name: "ZMQ_ROUTER_MANDATORY") }
    public func setZAPDomain(_ domain: String) throws { try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8), name: "ZMQ_ZAP_DOMAIN") }

    /// Makes this socket a CURVE server with the given Z85 secret key.
    public func setCurveServer(secretKey: String) throws {
        try setOption(ZMQ_CURVE_SERVER, Int32(1), name: "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }

    /// Makes this socket a CURVE client (Z85 keys).
    public func setCurveClient(publicKey: String, secretKey: String, serverPublicKey: String) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverPublicKey.utf8), name: "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(publicKey.utf8), name: "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }

    /// The endpoint libzmq actually bound or connected last (resolves port 0 / `*`).
    public func lastEndpoint() throws -> String {
        let h = try live("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
        var buf = [CChar](repeating: 0, count: 512)
        var len = buf.count
        if zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buf, &len) != 0 { throw MessagingError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") }
        return String(cString: buf)
    }

    // MARK: endpoints

    public func bind(_ endpoint: String) throws {
        let h = try live("zmq_bind")
        if zmq_bind(h, endpoint) != 0 {
            let e = MessagingError.last("zmq_bind(\(endpoint))")
            throw e
        }
    }

    public func connect(_ endpoint: String) throws {
        let h = try live("zmq_connect")
        if zmq_connect(h, endpoint) != 0 { throw MessagingError.last("zmq_connect(\(endpoint))") }
    }

    public func unbind(_ endpoint: String) throws {
        let h = try live("zmq_unbind")
        if zmq_unbind(h, endpoint) != 0 { throw MessagingError.last("zmq_unbind(\(endpoint))") }
    }

    // MARK: messages

    /// Sends the frames as one multipart message. With `dontWait`, a full queue
    /// throws `.zmq` with EAGAIN (check `MessagingError.isWouldBlock`).
    public func send(_ frames: [[UInt8]], dontWait: Bool = true) throws {
        let h = try live("zmq_send")
        guard !frames.isEmpty else { throw MessagingError.invalidUse("send of an empty multipart message") }
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = dontWait ? ZMQ_DONTWAIT : 0
            if i + 1 < frames.count { flags |= ZMQ_SNDMORE }
            while true {
                let rc = frame.withUnsafeBytes { zmq_send(h, $0.baseAddress, $0.count, flags) }
                if rc >= 0 { break }
                if zmq_errno() == EINTR { continue }
                throw MessagingError.last("zmq_send")
            }
        }
    }

    /// Receives one whole multipart message, or nil when none is waiting (with
    /// `dontWait`). Every part is drained even when the message is rejected, so a
    /// bad message never desynchronises the socket: more than `maxFrames` parts or
    /// more than `maxBytes` in total throws after draining.
    public func receive(dontWait: Bool = true, maxFrames: Int = 16, maxBytes: Int = Int.max) throws -> [[UInt8]]? {
        var ignored: String?
        return try receive(dontWait: dontWait, maxFrames: maxFrames, maxBytes: maxBytes, userID: &ignored)
    }

    /// As `receive`, also giving the ZAP User-Id of the connection the message came
    /// from (the client's Z85 CURVE key on the coordinator; nil without ZAP).
    public func receive(dontWait: Bool = true, maxFrames: Int = 16, maxBytes: Int = Int.max,
                        userID: inout String?) throws -> [[UInt8]]? {
        userID = nil
        let h = try live("zmq_msg_recv")
        var frames: [[UInt8]] = []
        var total = 0
        var overflow: MessagingError? = nil
        var msg = zmq_msg_t()
        while true {
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            let flags: Int32 = (frames.isEmpty && overflow == nil && dontWait) ? ZMQ_DONTWAIT : 0
            var rc: Int32
            repeat { rc = zmq_msg_recv(&msg, h, flags) } while rc < 0 && zmq_errno() == EINTR
            if rc < 0 {
                if zmq_errno() == EAGAIN && frames.isEmpty && overflow == nil { return nil }
                throw MessagingError.last("zmq_msg_recv")
            }
            let size = zmq_msg_size(&msg)
            if userID == nil, let id = zmq_msg_gets(&msg, "User-Id"), id.pointee != 0 { userID = String(cString: id) }
            total += size
            if overflow == nil {
                if frames.count >= maxFrames {
                    overflow = .malformedFrames("more than \(maxFrames) frames")
                } else if total > maxBytes {
                    overflow = .oversized(bytes: total, limit: maxBytes)
                } else if size == 0 {
                    frames.append([])
                } else {
                    let p = zmq_msg_data(&msg)!.assumingMemoryBound(to: UInt8.self)
                    frames.append(Array(UnsafeBufferPointer(start: p, count: size)))
                }
            }
            if zmq_msg_more(&msg) == 0 { break }
        }
        if let e = overflow {
            if case .oversized = e { throw MessagingError.oversized(bytes: total, limit: maxBytes) }
            throw e
        }
        return frames
    }
}

extension MessagingError {
    /// True for a send that failed only because the queue is full (EAGAIN).
    public var isWouldBlock: Bool {
        if case let .zmq(_, e, _) = self { return e == EAGAIN }
        if case .wouldBlock = self { return true }
        return false
    }
    /// True when the context was shut down (ETERM).
    public var isTerminated: Bool {
        if case let .zmq(_, e, _) = self { return e == ETERM }
        return false
    }
}

/// `zmq_poll` over sockets and plain file descriptors.
public enum ZMQPoll {
    public enum Item {
        case socket(ZMQSocket)
        case fd(Int32)
    }

    /// Waits until one of `items` is readable or `timeout` seconds pass (negative
    /// timeout waits forever). Returns one readable flag per item.
    public static func readable(_ items: [Item], timeout: Double) throws -> [Bool] {
        var raw = [zmq_pollitem_t]()
        raw.reserveCapacity(items.count)
        for item in items {
            var p = zmq_pollitem_t()
            switch item {
            case .socket(let s):
                guard let h = s.handle else { throw MessagingError.invalidUse("zmq_poll on a closed socket") }
                p.socket = h
            case .fd(let fd): p.fd = fd
            }
            p.events = Int16(ZMQ_POLLIN)
            raw.append(p)
        }
        let ms: Int = timeout < 0 ? -1 : Int((timeout * 1000).rounded(.up))
        while true {
            let rc = zmq_poll(&raw, Int32(raw.count), ms)
            if rc >= 0 { break }
            if zmq_errno() == EINTR { continue }
            throw MessagingError.last("zmq_poll")
        }
        return raw.map { ($0.revents & Int16(ZMQ_POLLIN)) != 0 }
    }
}

/// Monotonic seconds (for heartbeats and deadlines; never wall-clock).
@inline(__always) func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
