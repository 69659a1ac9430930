import Foundation
import Logging
import PipelineJobs

/// Progress of a long single-process command (`sample`, `fidstats`, `noise`, `train`, `convert`):
/// on a terminal a bar redrawn in place with rate and ETA; otherwise (a log file, a batch
/// job's output) one plain log line every `interval` seconds and one at the end.
public final class ProgressReporter {
    public let what: String
    public let unit: String
    public var total: Int
    private let isTerminal: Bool
    private let interval: Double
    private let logger: Logger
    private let start = ProgressReporter.now()
    private var lastDraw = -Double.infinity
    private var lastDone = 0
    private var drawn = false
    /// Where counting started (a resumed run): the rate counts from here.
    private let base: Int

    /// - Parameters: what: the task ("sampling"); unit: what is counted ("images").
    public init(_ what: String, total: Int, unit: String, startingAt base: Int = 0, interval: Double = 10,
                terminal: Bool = isatty(STDERR_FILENO) != 0, logger: Logger = Logger(label: "dit.progress")) {
        self.what = what; self.total = total; self.unit = unit
        self.isTerminal = terminal; self.interval = interval; self.logger = logger
        self.base = base; self.lastDone = base
    }

    /// `done` of `total` finished; `detail` is appended (e.g. the loss).
    public func update(_ done: Int, detail: String? = nil) {
        lastDone = done
        let t = Self.now()
        let final = done >= total
        if isTerminal {
            guard final || t - lastDraw >= 0.1 else { return }
            lastDraw = t
            let line = "\r" + bar(done) + " " + figures(done, at: t) + (detail.map { " · " + $0 } ?? "") + "\u{1B}[K"
            FileHandle.standardError.write(Data(line.utf8))
            drawn = true
        } else {
            guard final || t - lastDraw >= interval else { return }
            lastDraw = t
            logger.info("\(what): \(figures(done, at: t))\(detail.map { " · " + $0 } ?? "")")
        }
    }

    /// Ends the bar's line (terminal) or logs the last figures once more if not yet at the total.
    public func finish() {
        if isTerminal {
            if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        } else if lastDone < total {
            logger.info("\(what): \(figures(lastDone, at: Self.now())) (stopped)")
        }
    }

    /// "123/456 images (27.0%), 3.21 images/s, ETA 1m44s"
    func figures(_ done: Int, at t: Double) -> String {
        let elapsed = max(t - start, 1e-9)
        let rate = Double(done - base) / elapsed
        let pct = total > 0 ? 100 * Double(done) / Double(total) : 0
        var s = String(format: "%d/%d %@ (%.1f%%), %@ %@/s", done, total, unit, pct,
                       rate >= 100 ? String(format: "%.0f", rate) : String(format: "%.2f", rate), unit)
        if done >= total {
            s += ", took " + JobStatusReport.duration(elapsed)
        } else if rate > 0 {
            s += ", ETA " + JobStatusReport.duration(Double(total - done) / rate)
        }
        return s
    }

    func bar(_ done: Int, width: Int = 24) -> String {
        let f = total > 0 ? min(max(Double(done) / Double(total), 0), 1) : 0
        let full = Int((f * Double(width)).rounded(.down))
        return "\(what) [" + String(repeating: "#", count: full) + String(repeating: ".", count: width - full) + "]"
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
