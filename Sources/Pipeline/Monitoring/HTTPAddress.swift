import Foundation

/// Where the status server listens: `HOST:PORT`, `[IPv6]:PORT`, or a bare `PORT` (loopback).
/// Port 0 takes a free port (the server reports the one it bound).
public struct HTTPAddress: Equatable, CustomStringConvertible, Sendable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) { self.host = host; self.port = port }

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let port = Int(t) {
            self.init(host: "127.0.0.1", port: port)
        } else if t.hasPrefix("["), let close = t.firstIndex(of: "]") {
            let rest = t[t.index(after: close)...]
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else {
                throw MonitoringError.badAddress(text, "expected [IPv6]:PORT")
            }
            self.init(host: String(t[t.index(after: t.startIndex)..<close]), port: port)
        } else if let colon = t.lastIndex(of: ":"), let port = Int(t[t.index(after: colon)...]) {
            self.init(host: String(t[..<colon]), port: port)
        } else {
            throw MonitoringError.badAddress(text, "expected HOST:PORT or PORT")
        }
        guard !host.isEmpty, (0...65535).contains(port) else {
            throw MonitoringError.badAddress(text, "host must not be empty and the port must be in 0...65535")
        }
    }

    /// Only this machine can connect (127.0.0.0/8, ::1, localhost).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public enum MonitoringError: Error, CustomStringConvertible {
    case badAddress(String, String)
    case tokenRequired(HTTPAddress)
    case badToken(path: String, reason: String)
    case startFailed(HTTPAddress, String)

    public var description: String {
        switch self {
        case let .badAddress(text, why): return "bad --http address '\(text)': \(why)"
        case let .tokenRequired(a):
            return "--http \(a) is not a loopback address: the status pages show file paths and worker hosts, "
                + "so a non-loopback bind needs a bearer token (--http-token-file FILE)"
        case let .badToken(path, why): return "--http-token-file \(path): \(why)"
        case let .startFailed(a, why): return "status server on \(a) did not start: \(why)"
        }
    }
}

/// The bearer token clients must send (`Authorization: Bearer TOKEN`), read from a file.
public struct BearerToken: Sendable {
    let value: [UInt8]

    public init(file path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MonitoringError.badToken(path: path, reason: "cannot read the file")
        }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.count >= 16 else {
            throw MonitoringError.badToken(path: path, reason: "the token must be at least 16 characters")
        }
        guard !text.contains(where: { $0.isWhitespace }) else {
            throw MonitoringError.badToken(path: path, reason: "the token must be one line without spaces")
        }
        value = Array(text.utf8)
    }

    /// Whether an `Authorization` header carries this token (compared in constant time).
    public func accepts(authorization: String?) -> Bool {
        guard let a = authorization, a.hasPrefix("Bearer ") else { return false }
        let given = Array(a.utf8.dropFirst("Bearer ".utf8.count))
        guard given.count == value.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(given, value) { diff |= x ^ y }
        return diff == 0
    }
}
