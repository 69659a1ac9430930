import Foundation
import Logging

/// A ZAP (ZeroMQ Authentication Protocol, RFC 27) handler: a thread serving
/// `inproc://zeromq.zap.01` on the coordinator's context that admits a CURVE
/// client only when its public key is on the allow-list. Refusals are logged
/// (once per key per minute, as a refused client keeps retrying).
///
/// It must be started before the CURVE server socket binds: libzmq admits every
/// client when no handler is listening.
///
/// Sendable by hand: the socket and the refusal log belong to the handler's thread alone;
/// `allowed` and `stopping` are guarded by `stopLock`; `thread` is touched by the owner only.
final class ZAPHandler: @unchecked Sendable {
    static let endpoint = "inproc://zeromq.zap.01"
    private let socket: ZMQSocket
    private var allowed: Set<String>   // guarded by stopLock
    private let logger: Logger
    private let done = DispatchSemaphore(value: 0)
    private let wake: WakePipe
    private let stopLock = NSLock()
    private var stopping = false
    private var lastRefusalLog: [String: Double] = [:]
    private var thread: Thread?

    init(context: ZMQContext, allowed: Set<String>, logger: Logger) throws {
        socket = try ZMQSocket(context: context, type: .rep)
        try socket.setLinger(milliseconds: 0)
        try socket.bind(Self.endpoint)
        self.allowed = allowed
        self.logger = logger
        wake = try WakePipe()
        let t = Thread { [self] in self.serve() }
        t.name = "dit-zap"
        thread = t
        t.start()
    }

    /// Stops the thread and waits for it to end.
    func stop() {
        guard thread != nil else { return }
        stopLock.lock(); stopping = true; stopLock.unlock()
        wake.wake()
        done.wait()
        thread = nil
    }

    /// Replaces the allow-list; later handshakes use the new one (live connections stay).
    func setAllowed(_ keys: Set<String>) {
        stopLock.lock(); allowed = keys; stopLock.unlock()
    }

    private var isStopping: Bool {
        stopLock.lock(); defer { stopLock.unlock() }
        return stopping
    }

    private func serve() {
        defer {
            socket.close()
            done.signal()
        }
        while !isStopping {
            do {
                _ = try ZMQPoll.readable([.socket(socket), .fd(wake.readFD)], timeout: -1)
                if isStopping { return }
                guard let request = try socket.receive(dontWait: true, maxFrames: 16, maxBytes: 64 << 10) else { continue }
                try socket.send(reply(to: request), dontWait: false)
            } catch let e as MessagingError where e.isTerminated {
                return
            } catch {
                // Keep serving: with the handler gone, a libzmq without ZAP_ENFORCE_DOMAIN
                // would admit every client.
                logger.log(level: .error, "ZAP handler: \(error)")
                usleep(10_000)
            }
        }
    }

    /// Builds the reply frames: version, request id, status code, status text, user id, metadata.
    func reply(to request: [[UInt8]]) -> [[UInt8]] {
        guard request.count >= 6, String(decoding: request[0], as: UTF8.self) == "1.0" else {
            logger.log(level: .warning, "ZAP: malformed request of \(request.count) frames refused")
            let id = request.count > 1 ? request[1] : []
            return [Array("1.0".utf8), id, Array("500".utf8), Array("malformed ZAP request".utf8), [], []]
        }
        let id = request[1]
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        let (ok, text, user) = decide(mechanism: mechanism, credentials: Array(request.dropFirst(6)), address: address)
        return [Array("1.0".utf8), id, Array((ok ? "200" : "400").utf8), Array(text.utf8), Array(user.utf8), []]
    }

    private func decide(mechanism: String, credentials: [[UInt8]], address: String) -> (Bool, String, String) {
        guard mechanism == "CURVE" else {
            logger.log(level: .warning, "ZAP: refused \(mechanism) client from \(address): only CURVE is accepted")
            return (false, "CURVE required", "")
        }
        guard credentials.count == 1, let key = Curve.z85(credentials[0]) else {
            logger.log(level: .warning, "ZAP: refused CURVE client from \(address): malformed credentials")
            return (false, "malformed credentials", "")
        }
        stopLock.lock()
        let admitted = allowed.contains(key)
        stopLock.unlock()
        if admitted { return (true, "OK", key) }
        let now = monotonicNow()
        if let last = lastRefusalLog[key], now - last < 60 { return (false, "key not allowed", "") }
        lastRefusalLog[key] = now
        if lastRefusalLog.count > 4096 { lastRefusalLog = lastRefusalLog.filter { now - $0.value < 60 } }
        logger.log(level: .warning, "ZAP: refused CURVE client key \(key) from \(address): not on the allow-list")
        return (false, "key not allowed", "")
    }
}
