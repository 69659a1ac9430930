import Foundation
import Logging

/// The handler of `--log-format`: one line per event on standard error.
/// - text: `2026-12-04T09:50:00.123Z info dit.coordinator: job 1 done key=value`
/// - json: `{"label":"dit.coordinator","level":"info","message":"job 1 done","time":"2026-12-04T09:50:00.123Z", ...}`
///   (keys sorted; metadata keys that clash with those four are prefixed with `meta.`).
public struct StandardErrorLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let label: String
    public let format: LogFormat
    let sink: LineSink

    public init(label: String, format: LogFormat, sink: LineSink = .standardError) {
        self.label = label; self.format = format; self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let meta = merged(metadata, event.metadata)
        switch format {
        case .text:
            var line = "\(LineSink.timestamp()) \(event.level) \(label): \(event.message)"
            for (k, v) in meta.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(v)" }
            sink.write(line)
        case .json:
            var object: [String: Any] = ["time": LineSink.timestamp(), "level": event.level.rawValue, "label": label,
                                         "message": "\(event.message)"]
            for (k, v) in meta { object[object[k] == nil ? k : "meta." + k] = Self.json(v) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            else { return }
            sink.write(String(decoding: data, as: UTF8.self))
        }
    }

    static func json(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(json)
        case .dictionary(let d): return d.mapValues(json)
        }
    }
}

func merged(_ a: Logger.Metadata, _ b: Logger.Metadata?) -> Logger.Metadata {
    guard let b, !b.isEmpty else { return a }
    return a.merging(b) { _, new in new }
}

/// Where log lines go: one write per line, serialised, so lines from threads never interleave.
public final class LineSink: @unchecked Sendable {
    private let lock = NSLock()
    private let output: (String) -> Void

    public init(_ output: @escaping (String) -> Void) { self.output = output }

    public static let standardError = LineSink { line in
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = Foundation.write(2, b.baseAddress! + off, b.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    func write(_ line: String) {
        lock.lock(); defer { lock.unlock() }
        output(line)
    }

    /// UTC, milliseconds: 2026-12-04T09:50:00.123Z.
    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int(tv.tv_usec) / 1000)
    }
}
