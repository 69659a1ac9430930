import CZMQ
import Foundation
import Logging

/// Connection events of one socket (`zmq_socket_monitor`), read without blocking
/// from the thread that owns the socket. Used to log CURVE handshake failures,
/// which libzmq otherwise handles silently.
final class SocketMonitor {
    struct Event {
        let code: Int32
        let value: UInt32
        let endpoint: String

        var isAuthFailure: Bool { code == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH }
        var isHandshakeFailure: Bool {
            code == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH || code == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                || code == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        }

        var summary: String {
            switch code {
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "authentication refused (ZAP status \(value))"
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "handshake protocol error 0x\(String(value, radix: 16))"
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: return "handshake failed (errno \(value))"
            case ZMQ_EVENT_DISCONNECTED: return "disconnected"
            case ZMQ_EVENT_CONNECTED: return "connected"
            default: return "event 0x\(String(code, radix: 16))"
            }
        }
    }

    private static let counter = NSLock()
    nonisolated(unsafe) private static var next = 0
    let pair: ZMQSocket

    init(_ socket: ZMQSocket, events: Int32) throws {
        Self.counter.lock()
        Self.next += 1
        let address = "inproc://dit-monitor-\(getpid())-\(Self.next)"
        Self.counter.unlock()
        guard let h = socket.handle else { throw MessagingError.invalidUse("monitor of a closed socket") }
        if zmq_socket_monitor(h, address, events) != 0 { throw MessagingError.last("zmq_socket_monitor") }
        pair = try ZMQSocket(context: socket.context, type: .pair)
        try pair.setLinger(milliseconds: 0)
        try pair.connect(address)
    }

    /// Every event waiting now.
    func drain() -> [Event] {
        var out: [Event] = []
        while let frames = try? pair.receive(dontWait: true, maxFrames: 4, maxBytes: 4096), frames.count >= 2 {
            let head = frames[0]
            guard head.count >= 6 else { continue }
            let code = Int32(UInt16(head[0]) | UInt16(head[1]) << 8)
            let value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
            out.append(Event(code: code, value: value, endpoint: String(decoding: frames[1], as: UTF8.self)))
        }
        return out
    }

    func close() { pair.close() }

    static let handshakeEvents = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
}

/// Caps repetitive log lines (a misbehaving peer must not flood the log):
/// at most `limit` lines per `window` seconds, then one line counting the rest.
final class LogLimiter {
    private let limit: Int
    private let window: Double
    private var windowStart = 0.0
    private var count = 0
    private var suppressed = 0

    init(limit: Int = 20, window: Double = 10) {
        self.limit = limit
        self.window = window
    }

    func log(_ logger: Logger, _ level: Logger.Level, _ line: @autoclosure () -> String) {
        let now = monotonicNow()
        if now - windowStart >= window {
            if suppressed > 0 { logger.log(level: level, "\(suppressed) similar log lines suppressed in the last \(Int(window)) s") }
            windowStart = now
            count = 0
            suppressed = 0
        }
        if count < limit {
            count += 1
            logger.log(level: level, "\(line())")
        } else {
            suppressed += 1
        }
    }
}
