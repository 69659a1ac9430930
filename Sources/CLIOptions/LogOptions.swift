import ArgumentParser
import Foundation
import Logging

/// `--log-level` and `--log-format`: the one logging path of both executables (swift-log).
/// The library logs through `Logger`s; these flags choose what reaches standard error.
public struct LogOptions: ParsableArguments {
    @Option(help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: Logger.Level = .info
    @Option(help: "text (one readable line each) or json (one JSON object a line, for cluster log collectors).")
    public var logFormat: LogFormat = .text

    public init() {}

    /// Installs the handler for the whole process (once; later calls change nothing).
    public func bootstrap() {
        LogOptions.once.run { [logLevel, logFormat] in
            LoggingSystem.bootstrap { label in
                var h = StandardErrorLogHandler(label: label, format: logFormat)
                h.logLevel = logLevel
                return h
            }
        }
    }

    private static let once = Once()
}

public enum LogFormat: String, CaseIterable, ExpressibleByArgument, Sendable { case text, json }

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Runs a closure the first time only.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func run(_ body: () -> Void) {
        lock.lock(); defer { lock.unlock() }
        if !done { done = true; body() }
    }
}
