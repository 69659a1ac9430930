import Foundation
import PipelineFiles

/// One process at a time opens a ledger: an exclusive `flock(2)` on `LEDGER.lock` beside it,
/// held for as long as the holder runs (the kernel drops it when the process dies, however it
/// dies), with the holder written in it (host, pid, role, its control endpoint) for the error
/// others get. `serve` and `run` hold it for their lifetime; `submit`, `status`, `cancel` and
/// `retry` take it only while they open the file themselves, which they do only when no
/// coordinator runs: otherwise they go through the coordinator (`--coordinator`, CONTROL).
///
/// Why: the ledger is SQLite in WAL mode, whose shared-memory index works only among
/// processes of one host; two coordinators on one ledger would also lease the same shards
/// twice. On NFS (v4, or v3 with lockd) Linux turns `flock` into a whole-file lock the server
/// arbitrates, so the lock also holds between hosts.
public final class LedgerLock {
    public let path: String
    private var fd: Int32

    /// What the lock file says about its holder.
    public struct Holder: Equatable, CustomStringConvertible {
        public var host: String
        public var pid: Int
        public var role: String
        public var endpoint: String?
        public var since: String

        public var description: String {
            "\(role) pid \(pid) on host \(host) (since \(since))" + (endpoint.map { ", control endpoint \($0)" } ?? "")
        }

        func encoded() -> String {
            "host=\(host)\npid=\(pid)\nrole=\(role)\nsince=\(since)\n" + (endpoint.map { "endpoint=\($0)\n" } ?? "")
        }

        static func parse(_ text: String) -> Holder? {
            var f: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                f[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            guard let host = f["host"], let pid = f["pid"].flatMap(Int.init) else { return nil }
            return Holder(host: host, pid: pid, role: f["role"] ?? "?", endpoint: f["endpoint"], since: f["since"] ?? "?")
        }
    }

    public enum LockError: Error, CustomStringConvertible, Equatable {
        /// Another process holds the ledger (nil holder: the lock file could not be read).
        case held(ledger: String, holder: Holder?)
        case io(path: String, reason: String)

        public var description: String {
            switch self {
            case let .held(ledger, holder):
                var s = "ledger \(ledger) is in use by " + (holder.map(\.description) ?? "another process")
                s += ": only one coordinator may hold a ledger"
                if let e = holder?.endpoint {
                    s += "; send submit/status/cancel/retry to it with --coordinator \(e)"
                    if holder?.role == "serve" { s += " (and --keys DIR --key-name NAME when it runs CURVE)" }
                }
                return s
            case let .io(path, reason): return "\(path): \(reason)"
            }
        }
    }

    /// The lock file of a ledger.
    public static func lockPath(ledger: String) -> String { ledger + ".lock" }

    /// Takes the lock of `ledger` (never waits). `role`: what the holder is (serve, run, submit, ...).
    public init(ledger: String, role: String) throws {
        path = Self.lockPath(ledger: ledger)
        // The ledger may be new, in a folder not made yet (the ledger itself would create it).
        do {
            try AtomicFileWriter.makeDirectory((ledger as NSString).deletingLastPathComponent)
        } catch let e as FileError {
            throw LockError.io(path: path, reason: e.reason)
        }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LockError.io(path: path, reason: String(cString: strerror(errno))) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            close(fd)
            fd = -1
            guard e == EWOULDBLOCK else { throw LockError.io(path: path, reason: "flock: \(String(cString: strerror(e)))") }
            throw LockError.held(ledger: ledger, holder: Holder.parse(text))
        }
        try write(Holder(host: ProcessInfo.processInfo.hostName, pid: Int(getpid()), role: role, endpoint: nil,
                         since: ISO8601DateFormatter().string(from: Date())))
    }

    deinit { release() }

    /// The holder as written in the file now.
    public var holder: Holder? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap(Holder.parse)
    }

    /// Records where the holder answers CONTROL (`serve`: its bind, with `*` as this host's name).
    public func record(endpoint: String) throws {
        guard var h = holder else { return }
        h.endpoint = endpoint
        try write(h)
    }

    private func write(_ h: Holder) throws {
        let bytes = Array(h.encoded().utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, bytes, bytes.count, 0) == bytes.count else {
            throw LockError.io(path: path, reason: "cannot write the holder: \(String(cString: strerror(errno)))")
        }
    }

    /// Drops the lock (the file stays: removing it would race with the next holder).
    public func release() {
        guard fd >= 0 else { return }
        _ = flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    /// The endpoint others should use for a coordinator bound on `bound` (e.g. tcp://0.0.0.0:5555
    /// from `tcp://*:5555`): a wildcard address becomes this host's name.
    public static func advertised(_ bound: String) -> String {
        for wildcard in ["tcp://0.0.0.0:", "tcp://*:", "tcp://[::]:"] where bound.hasPrefix(wildcard) {
            return "tcp://\(ProcessInfo.processInfo.hostName):" + bound.dropFirst(wildcard.count)
        }
        return bound
    }
}
