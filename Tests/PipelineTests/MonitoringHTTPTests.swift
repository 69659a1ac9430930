import Foundation
import XCTest
@testable import PipelineJobs

/// The coordinator's `--http` status server, against real processes: a `run synthetic` job with
/// local workers, watched through the page (headless Chromium), `/api/jobs` (against
/// `status --json`) and `/metrics` (`promtool check metrics`); and the bind rules (non-loopback
/// needs a bearer token, a wrong token is refused).
final class MonitoringHTTPTests: ProcessTestCase {
    /// The bound address the coordinator logs ("status page on http://HOST:PORT/").
    func statusAddress(_ log: String, timeout: Double = 60) throws -> Int {
        var port = 0
        try waitFor("the status server's address in \(log)", timeout: timeout) {
            let text = (try? String(contentsOfFile: dir + "/" + log, encoding: .utf8)) ?? ""
            guard let r = text.range(of: #"status page on http://[^ /]+:([0-9]+)/"#, options: .regularExpression) else { return false }
            port = Int(text[r].split(separator: ":").last!.dropLast()) ?? 0
            return port > 0
        }
        return port
    }

    func tool(_ path: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            XCTFail("\(path) is missing: run scripts/install-deps.sh (deploy/debian-packages.txt)")
            throw CocoaError(.fileNoSuchFile)
        }
        return path
    }

    /// Runs a command to its end under `timeout`, which kills its whole process group if it
    /// overruns (Chromium's helpers included); returns (status, stdout, stderr).
    func external(_ exe: String, _ args: [String], stdin: Data? = nil, limit: Int = 90) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        p.arguments = ["-k", "5", "\(limit)", exe] + args
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = input
        try p.run()
        children.append(p)
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Processes still running whose command line mentions `marker` (a test's own scratch path).
    func leftovers(_ marker: String) -> [Int32] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.compactMap(Int32.init).filter { pid in
            guard let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: cmd, as: UTF8.self).contains(marker)
        }
    }

    func testPageAPIAndMetricsWhileAJobRuns() throws {
        let chromium = try tool("/usr/bin/chromium"), promtool = try tool("/usr/bin/promtool")
        let ledger = dir + "/ledger.sqlite"
        let coordinator = try start("dit-coordinator", [
            "run", "synthetic", "--out", dir + "/out", "--items", "400", "--items-per-shard", "4",
            "--millis-per-item", "100", "--bad-items", "3", "9", "--workers", "2", "--ledger", ledger,
            "--http", "127.0.0.1:0"], log: "coordinator.log")
        let port = try statusAddress("coordinator.log")

        // A job with progress and a connected worker.
        var api = JobStatusReport(jobs: [], workers: [], latestItemErrors: [], now: 0)
        try waitFor("progress and a connected worker", timeout: 60) {
            let r = try HTTPGet.get(port: port, path: "/api/jobs")
            guard r.status == 200 else { return false }
            api = try JSONDecoder().decode(JobStatusReport.self, from: r.body)
            // Both bad items (3 and 9, in shards 0 and 2) are recorded.
            return (api.jobs.first?.doneShards ?? 0) >= 3 && api.workers.contains(where: \.connected)
                && api.latestItemErrors.count == 2
        }
        XCTAssertTrue(coordinator.isRunning, "the job must still be running while it is watched")

        // /api/jobs and `status --json` are one document (sent over CONTROL to the running
        // coordinator, which holds the ledger and recorded its endpoint beside the lock).
        let lockText = try String(contentsOfFile: LedgerLock.lockPath(ledger: ledger), encoding: .utf8)
        let control = try XCTUnwrap(LedgerLock.Holder.parse(lockText)?.endpoint, lockText)
        let (code, cli) = try runToEnd("dit-coordinator", ["status", "--json", "--coordinator", control])
        XCTAssertEqual(code, 0, cli)
        let status = try JSONDecoder().decode(JobStatusReport.self, from: Data(cli.utf8))
        XCTAssertEqual(status.jobs.map(\.id), api.jobs.map(\.id))
        XCTAssertEqual(status.jobs.map(\.kind), ["synthetic"])
        XCTAssertEqual(status.jobs.map(\.totalShards), api.jobs.map(\.totalShards))
        XCTAssertEqual(status.jobs.map(\.totalItems), [400])
        XCTAssertEqual(status.jobs.map(\.outputDir), api.jobs.map(\.outputDir))
        XCTAssertEqual(Set(status.workers.map(\.id)), Set(api.workers.map(\.id)))
        XCTAssertGreaterThanOrEqual(status.jobs[0].doneShards, api.jobs[0].doneShards, "progress only grows")
        let one = try HTTPGet.get(port: port, path: "/api/jobs/1")
        XCTAssertEqual(try JSONDecoder().decode(JobStatusReport.self, from: one.body).jobs.map(\.id), [1])
        XCTAssertEqual(try HTTPGet.get(port: port, path: "/api/jobs/42").status, 404)

        // /metrics: valid exposition (promtool lints names, types, HELP) with the loop's and the ledger's series.
        let metrics = try HTTPGet.get(port: port, path: "/metrics")
        XCTAssertEqual(metrics.status, 200)
        let (lint, lintOut, lintErr) = try external(promtool, ["check", "metrics"], stdin: metrics.body)
        XCTAssertEqual(lint, 0, "promtool: \(lintOut) \(lintErr)\n\(metrics.text)")
        for series in [#"dit_shards{job="1",kind="synthetic",state="done"}"#, #"dit_items_done_total{job="1",kind="synthetic"}"#,
                       #"dit_item_errors_total{job="1",kind="synthetic"} 2"#, #"dit_dispatches_total{kind="synthetic"}"#,
                       "dit_heartbeats_total ", "dit_workers_connected 2",
                       #"dit_shard_duration_seconds_bucket{kind="synthetic","#, #"dit_ledger_commit_seconds_bucket{kind="synthetic","#] {
            XCTAssertTrue(metrics.text.contains(series), "no \(series) in\n\(metrics.text)")
        }

        // The page, as a browser renders it: the job's progress bar and a worker.
        let profile = dir + "/chromium-profile"
        let common = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile, "--hide-scrollbars"]
        let (domCode, dom, domErr) = try external(chromium, common + ["--dump-dom", "http://127.0.0.1:\(port)/"])
        XCTAssertEqual(domCode, 0, domErr)
        XCTAssertTrue(dom.contains("job 1 · synthetic"), dom)
        XCTAssertNotNil(dom.range(of: #"class="fill" style="width:[0-9.]+%"#, options: .regularExpression), dom)
        XCTAssertTrue(dom.contains(api.workers.first(where: \.connected)!.id), dom)
        XCTAssertTrue(dom.contains("http-equiv=\"refresh\""), dom)
        let shot = dir + "/status-page.png"
        let (shotCode, _, shotErr) = try external(chromium, common + ["--window-size=480,900", "--screenshot=" + shot,
                                                                      "http://127.0.0.1:\(port)/"])
        XCTAssertEqual(shotCode, 0, shotErr)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG screenshot")
        // DIT_STATUS_SCREENSHOT=PATH keeps the screenshot (the README's, scripts/status-screenshot.sh).
        if let keep = ProcessInfo.processInfo.environment["DIT_STATUS_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: shot, toPath: keep)
        }
        for pid in leftovers(profile) { kill(pid, SIGKILL) }
        XCTAssertEqual(leftovers(profile), [], "Chromium left processes behind")

        kill(coordinator.processIdentifier, SIGTERM)
        try waitFor("the coordinator to stop", timeout: 30) { !coordinator.isRunning }
    }

    func testNonLoopbackNeedsATokenAndAWrongTokenGets401() throws {
        let ledger = dir + "/ledger.sqlite"
        let (refused, text) = try runToEnd("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:0",
                                                               "--http", "0.0.0.0:0"])
        XCTAssertNotEqual(refused, 0, text)
        XCTAssertTrue(text.contains("bearer token"), text)

        let tokenFile = dir + "/token"
        let token = "s3cret-token-0123456789abcdef"
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tokenFile))
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:0",
                                                        "--http", "0.0.0.0:0", "--http-token-file", tokenFile,
                                                        "--log-format", "json"], log: "coordinator.log")
        let port = try statusAddress("coordinator.log")
        XCTAssertEqual(try HTTPGet.get(port: port, path: "/api/jobs").status, 401)
        let wrong = try HTTPGet.get(port: port, path: "/metrics", headers: ["Authorization": "Bearer not-the-token-0000000000"])
        XCTAssertEqual(wrong.status, 401)
        XCTAssertEqual(wrong.headers["www-authenticate"]?.hasPrefix("Bearer"), true)
        let right = try HTTPGet.get(port: port, path: "/api/jobs", headers: ["Authorization": "Bearer " + token])
        XCTAssertEqual(right.status, 200, right.text)
        XCTAssertEqual(try JSONDecoder().decode(JobStatusReport.self, from: right.body).jobs, [])

        kill(coordinator.processIdentifier, SIGTERM)
        try waitFor("the coordinator to stop", timeout: 30) { !coordinator.isRunning }
        // --log-format json: every line one JSON object with a level and a message.
        let lines = try String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8).split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(o?["message"] as? String, String(line))
            XCTAssertNotNil(o?["level"] as? String, String(line))
        }
    }
}
