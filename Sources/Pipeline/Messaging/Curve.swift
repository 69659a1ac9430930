import CZMQ
import Foundation

/// The coordinator's CURVE identity and the worker public keys it admits (Z85).
public struct CurveServerKeys: Equatable, Sendable {
    public var publicKey: String
    public var secretKey: String
    public var allowedClientKeys: Set<String>

    public init(publicKey: String, secretKey: String, allowedClientKeys: Set<String>) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.allowedClientKeys = allowedClientKeys
    }
}

/// A worker's CURVE identity and the coordinator public key it expects (Z85).
public struct CurveClientKeys: Equatable, Sendable {
    public var publicKey: String
    public var secretKey: String
    public var serverPublicKey: String

    public init(publicKey: String, secretKey: String, serverPublicKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.serverPublicKey = serverPublicKey
    }
}

/// CURVE helpers: key generation, validation and the loopback policy.
public enum Curve {
    /// The ZAP domain the coordinator's ROUTER asks its handler about.
    public static let zapDomain = "dit"
    /// ZMQ_ZAP_ENFORCE_DOMAIN (zmq.h DRAFT API, not exported without ZMQ_BUILD_DRAFT_API).
    static let zapEnforceDomainOption: Int32 = 93

    /// Whether `endpoint` must use CURVE: every tcp endpoint that is not on the
    /// loopback interface (`tcp://*:PORT`, `0.0.0.0`, a host name, a LAN address).
    /// Loopback tcp, ipc:// and inproc:// stay on one machine and may go without.
    public static func requiredFor(endpoint: String) -> Bool {
        let lower = endpoint.lowercased()
        if lower.hasPrefix("ipc://") || lower.hasPrefix("inproc://") { return false }
        guard lower.hasPrefix("tcp://") else { return true }
        var rest = lower.dropFirst("tcp://".count)
        // "tcp://iface;host:port" names a source interface; the peer is after ';'.
        if let semi = rest.lastIndex(of: ";") { rest = rest[rest.index(after: semi)...] }
        var host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return true }
            host = rest[rest.index(after: rest.startIndex)..<close]
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
        } else {
            host = rest
        }
        if host == "localhost" || host == "::1" || host == "lo" { return false }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        if octets.count == 4, octets[0] == "127", octets.allSatisfy({ UInt8($0) != nil }) { return false }
        return true
    }

    /// A new CURVE key pair (Z85, 40 characters each).
    public static func generateKeyPair() throws -> (publicKey: String, secretKey: String) {
        var pub = [CChar](repeating: 0, count: 41)
        var sec = [CChar](repeating: 0, count: 41)
        if zmq_curve_keypair(&pub, &sec) != 0 { throw MessagingError.last("zmq_curve_keypair") }
        return (String(cString: pub), String(cString: sec))
    }

    /// The public key belonging to a Z85 secret key.
    public static func publicKey(forSecret secret: String) throws -> String {
        guard isValidZ85Key(secret) else { throw MessagingError.badKey(path: "<secret>", reason: "not a 40-character Z85 key") }
        var pub = [CChar](repeating: 0, count: 41)
        if zmq_curve_public(&pub, secret) != 0 { throw MessagingError.last("zmq_curve_public") }
        return String(cString: pub)
    }

    private static let z85Alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// True for a 40-character Z85 string (a 32-byte key).
    public static func isValidZ85Key(_ key: String) -> Bool {
        let u = Array(key.utf8)
        return u.count == 40 && u.allSatisfy { z85Alphabet.contains($0) }
    }

    /// Z85 text of a 32-byte binary key (as ZAP hands it over).
    static func z85(_ binary: [UInt8]) -> String? {
        guard binary.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&out, binary, 32) != nil else { return nil }
        return String(cString: out)
    }
}
