import CZMQ
import Foundation
import Logging

/// Everything that can go wrong in the messaging layer. libzmq failures carry
/// `zmq_strerror` text and the call that failed; wire-format problems name the
/// frame and what was wrong with it.
public enum MessagingError: Error, CustomStringConvertible, Equatable {
    /// A libzmq call failed (`call`, errno, zmq_strerror text).
    case zmq(call: String, errno: Int32, message: String)
    /// A multipart message that does not follow the DITP/1 frame layout.
    case malformedFrames(String)
    /// A protocol version frame other than "DITP/1".
    case wrongVersion(String)
    /// A command byte this protocol does not define.
    case unknownCommand(UInt8)
    /// A JSON body that does not decode to the command's payload.
    case badBody(command: String, reason: String)
    /// A frame or message larger than the configured cap.
    case oversized(bytes: Int, limit: Int)
    /// A valid message that the receiving side must not get (wrong direction, before READY, ...).
    case outOfOrder(String)
    /// The peer's ROUTER identity is not (or no longer) connected.
    case unreachable(PeerID)
    /// The send queue to a peer is full (high-water mark reached).
    case wouldBlock(String)
    /// A key file or key that is missing or not a valid Z85 CURVE key.
    case badKey(path: String, reason: String)
    /// A non-loopback endpoint without CURVE keys.
    case curveRequired(endpoint: String)
    /// An endpoint string libzmq cannot use, or a misuse of an endpoint object.
    case invalidUse(String)

    public var description: String {
        switch self {
        case let .zmq(call, errno, message): return "\(call) failed: \(message) (errno \(errno))"
        case let .malformedFrames(what): return "malformed message: \(what)"
        case let .wrongVersion(v): return "wrong protocol version \(v.debugDescription) (expected \(WireCodec.version.debugDescription))"
        case let .unknownCommand(c): return "unknown command byte 0x\(String(c, radix: 16))"
        case let .badBody(command, reason): return "bad \(command) body: \(reason)"
        case let .oversized(bytes, limit): return "message of \(bytes) bytes exceeds the \(limit)-byte limit"
        case let .outOfOrder(what): return "out-of-order message: \(what)"
        case let .unreachable(peer): return "peer \(peer) is not connected"
        case let .wouldBlock(what): return "send queue full: \(what)"
        case let .badKey(path, reason): return "CURVE key \(path): \(reason)"
        case let .curveRequired(endpoint):
            return "\(endpoint) is not a loopback endpoint: CURVE keys are required (run `dit-coordinator keygen`)"
        case let .invalidUse(what): return what
        }
    }

    /// The current libzmq error for `call`.
    static func last(_ call: String) -> MessagingError {
        let e = zmq_errno()
        return .zmq(call: call, errno: e, message: String(cString: zmq_strerror(e)))
    }
}

extension Logger {
    /// A logger that drops everything (tests, benchmarks). Everything else logs through
    /// swift-log: the executables choose the handler (`--log-level`, `--log-format`).
    public static let silent = Logger(label: "silent", factory: { _ in SwiftLogNoOpLogHandler() })
}
