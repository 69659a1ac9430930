import CLIOptions
import Foundation
import Logging
import XCTest

/// The one logging path (swift-log handlers of `--log-format`) and the progress reporter of
/// the long single-process commands.
final class LoggingProgressTests: XCTestCase {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [String] = []
        var all: [String] { lock.lock(); defer { lock.unlock() }; return storage }
        lazy var sink = LineSink { [unowned self] line in lock.lock(); storage.append(line); lock.unlock() }
    }

    func testJSONHandlerWritesOneObjectPerLine() throws {
        let lines = Lines()
        var log = Logger(label: "dit.test") { StandardErrorLogHandler(label: $0, format: .json, sink: lines.sink) }
        log[metadataKey: "job"] = "7"
        log.info("shard \"3\" done\nnext line", metadata: ["message": "clash", "items": .array(["1", "2"])])
        log.debug("below the level: dropped")
        XCTAssertEqual(lines.all.count, 1)
        let line = try XCTUnwrap(lines.all.first)
        XCTAssertFalse(line.contains("\n"), line)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(o["message"] as? String, "shard \"3\" done\nnext line")
        XCTAssertEqual(o["level"] as? String, "info")
        XCTAssertEqual(o["label"] as? String, "dit.test")
        XCTAssertEqual(o["job"] as? String, "7")
        XCTAssertEqual(o["meta.message"] as? String, "clash")
        XCTAssertEqual(o["items"] as? [String], ["1", "2"])
        XCTAssertNotNil((o["time"] as? String)?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression))
    }

    func testTextHandlerLine() {
        let lines = Lines()
        var log = Logger(label: "dit.test") { StandardErrorLogHandler(label: $0, format: .text, sink: lines.sink) }
        log.logLevel = .warning
        log.info("dropped")
        log.warning("disk full", metadata: ["worker": "w1"])
        XCTAssertEqual(lines.all.count, 1)
        XCTAssertTrue(lines.all[0].hasSuffix(" warning dit.test: disk full worker=w1"), lines.all[0])
    }

    func testProgressWithoutATerminalLogsPlainLines() {
        let lines = Lines()
        let log = Logger(label: "dit.progress") { StandardErrorLogHandler(label: $0, format: .text, sink: lines.sink) }
        let p = ProgressReporter("sampling", total: 8, unit: "images", interval: 3600, terminal: false, logger: log)
        p.update(1)            // the first update is logged
        p.update(2)            // within the interval: not
        p.update(8)            // the end always is
        p.finish()             // nothing left to say
        XCTAssertEqual(lines.all.count, 2, "\(lines.all)")
        XCTAssertTrue(lines.all[0].contains("sampling: 1/8 images (12.5%)"), lines.all[0])
        XCTAssertTrue(lines.all[0].contains("ETA"), lines.all[0])
        XCTAssertTrue(lines.all[1].contains("8/8 images (100.0%)"), lines.all[1])
        XCTAssertTrue(lines.all[1].contains("took"), lines.all[1])

        let resumed = ProgressReporter("training", total: 100, unit: "steps", startingAt: 90, interval: 3600,
                                       terminal: false, logger: log)
        resumed.update(95)
        resumed.finish()
        XCTAssertTrue(lines.all[2].contains("95/100 steps"), lines.all[2])
        XCTAssertTrue(lines.all[3].hasSuffix("(stopped)"), lines.all[3])
    }
}
