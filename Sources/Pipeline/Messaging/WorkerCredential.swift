import Foundation
import PipelineFiles

/// What a worker id is bound to on the coordinator (DITP/1 revision 3): the CURVE public key
/// the connection was admitted with (where CURVE is on) and the worker process's session
/// token (only its SHA-256 is kept, so the ledger and logs never hold the token). A worker of
/// revision 2 or older sends no token; its credential is its host and pid, as before.
///
/// A READY claiming the id of a connected worker with another credential is another process
/// (an admitted worker impersonating it, or a new process that reuses a host-pid name while
/// the old connection still looks alive): it is refused and never takes the id over.
public struct WorkerCredential: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(clientKey: String?, hello: WorkerHello) {
        var parts: [String] = []
        if let clientKey { parts.append("curve:" + clientKey) }
        if let session = hello.session {
            parts.append("session:" + String(SHA256.hex(Data(session.utf8)).prefix(32)))
        }
        if parts.isEmpty { parts.append("host:\(hello.hostname) pid:\(hello.pid)") }
        value = parts.joined(separator: " ")
    }

    /// Names what the credential consists of (never its value): for log lines.
    public var description: String {
        var names: [String] = []
        for part in value.split(separator: " ") {
            if part.hasPrefix("curve:") {
                names.append("CURVE key")
            } else if part.hasPrefix("session:") {
                names.append("session token")
            } else if part.hasPrefix("host:") {
                names.append("host and pid")
            }
        }
        return names.joined(separator: " and ")
    }

    /// A fresh per-process session token: 128 random bits, hex.
    public static func newSessionToken() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
    }
}
