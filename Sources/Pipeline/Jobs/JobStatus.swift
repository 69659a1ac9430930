import Foundation
import GRDB
import PipelineFiles

/// What `dit-coordinator status` shows, read from the ledger in one snapshot. The same
/// document (Codable) is `status --json` and the coordinator's `/api/jobs` (PipelineMonitoring).
public struct JobStatusReport: Codable, Equatable {
    public struct ShardFailureLine: Codable, Equatable {
        public var index: Int
        public var reason: String
    }
    public struct Job: Codable, Equatable {
        public var id: Int64
        public var kind: String
        public var state: String
        public var outputDir: String
        public var totalShards: Int
        public var totalItems: Int
        public var doneShards: Int
        /// Leased to a worker now.
        public var runningShards: Int
        public var failedShards: Int
        public var pendingShards: Int
        public var doneItems: Int
        /// doneItems / totalItems, 0...1.
        public var progress: Double
        /// Done items over the time since the first lease (to the end, for a finished job).
        public var itemsPerSecond: Double
        /// Remaining items at that rate; nil unless running with a rate.
        public var etaSeconds: Double?
        /// Since the job was submitted.
        public var ageSeconds: Double
        public var createdAt: Double
        public var startedAt: Double?
        public var finishedAt: Double?
        public var summary: String?
        public var failures: [ShardFailureLine]
        /// The first item errors by item index (at most the limit given to `load`).
        public var itemErrors: [ItemFailure]
        public var itemErrorCount: Int
    }
    public struct Worker: Codable, Equatable {
        public var id: String
        public var host: String
        public var pid: Int
        public var threads: Int
        public var connected: Bool
        public var shardsDone: Int
        public var itemsDone: Int
        public var busySeconds: Double
        public var itemsPerSecond: Double
        public var lastSeen: Double
        public var lastSeenSecondsAgo: Double
    }
    /// An item error with its job, newest first in `latestItemErrors`.
    public struct LatestItemError: Codable, Equatable {
        public var job: Int64
        public var item: Int
        public var path: String
        public var reason: String
    }
    public var jobs: [Job]
    public var workers: [Worker]
    public var latestItemErrors: [LatestItemError]
    /// Seconds since the epoch when the snapshot was read.
    public var now: Double

    public static func load(ledger: Ledger, jobId: Int64? = nil, maxItemErrors: Int = 20) throws -> JobStatusReport {
        let now = ledger.clock()
        return try ledger.read { db in try load(db, now: now, jobId: jobId, maxItemErrors: maxItemErrors) }
    }

    /// The report from any connection to a ledger (the monitoring server's read-only one).
    public static func load(_ db: Database, now: Double, jobId: Int64? = nil, maxItemErrors: Int = 20) throws -> JobStatusReport {
        let rows = try Row.fetchAll(db, sql: """
            SELECT j.*,
              (SELECT COUNT(*) FROM shards s WHERE s.job_id = j.id AND s.state = 'done') AS done_shards,
              (SELECT COUNT(*) FROM shards s WHERE s.job_id = j.id AND s.state = 'leased') AS leased_shards,
              (SELECT COUNT(*) FROM shards s WHERE s.job_id = j.id AND s.state = 'failed') AS failed_shards,
              (SELECT COALESCE(SUM(item_end - item_start), 0) FROM shards s WHERE s.job_id = j.id AND s.state = 'done') AS done_items,
              (SELECT COUNT(*) FROM item_errors e WHERE e.job_id = j.id) AS n_errors
            FROM jobs j WHERE (? IS NULL OR j.id = ?) ORDER BY j.id
            """, arguments: [jobId, jobId])
        if let jobId, rows.isEmpty { throw JobError.unknownJob(jobId) }
        let jobs = try rows.map { r -> Job in
            let id: Int64 = r["id"]
            let failures = try Row.fetchAll(db, sql: """
                SELECT idx, last_error FROM shards WHERE job_id = ? AND state = 'failed' ORDER BY idx LIMIT 50
                """, arguments: [id]).map { ShardFailureLine(index: $0["idx"], reason: ($0["last_error"] as String?) ?? "") }
            let errors = try Row.fetchAll(db, sql: """
                SELECT item, path, reason FROM item_errors WHERE job_id = ? ORDER BY item LIMIT ?
                """, arguments: [id, maxItemErrors]).map { ItemFailure(item: $0["item"], path: $0["path"], reason: $0["reason"]) }
            let total: Int = r["total_shards"], done: Int = r["done_shards"], leased: Int = r["leased_shards"]
            let failed: Int = r["failed_shards"], totalItems: Int = r["total_items"], doneItems: Int = r["done_items"]
            let state: String = r["state"], started: Double? = r["started_at"], finished: Double? = r["finished_at"]
            var rate = 0.0
            if let started { rate = Double(doneItems) / max((finished ?? now) - started, 1e-9) }
            let eta: Double? = state == JobState.running.rawValue && rate > 0 ? Double(totalItems - doneItems) / rate : nil
            let created: Double = r["created_at"]
            return Job(id: id, kind: r["kind"], state: state, outputDir: r["output_dir"], totalShards: total,
                       totalItems: totalItems, doneShards: done, runningShards: leased, failedShards: failed,
                       pendingShards: total - done - leased - failed, doneItems: doneItems,
                       progress: totalItems > 0 ? Double(doneItems) / Double(totalItems) : 0,
                       itemsPerSecond: rate, etaSeconds: eta, ageSeconds: max(now - created, 0), createdAt: created,
                       startedAt: started, finishedAt: finished, summary: r["summary"], failures: failures,
                       itemErrors: errors, itemErrorCount: r["n_errors"])
        }
        let workers = try Row.fetchAll(db, sql: "SELECT * FROM workers ORDER BY id").map { w -> Worker in
            let busy: Double = w["busy_seconds"], items: Int = w["items_done"], seen: Double = w["last_seen"]
            return Worker(id: w["id"], host: w["host"], pid: w["pid"], threads: w["threads"],
                          connected: (w["connected"] as Int) != 0, shardsDone: w["shards_done"], itemsDone: items,
                          busySeconds: busy, itemsPerSecond: busy > 0 ? Double(items) / busy : 0, lastSeen: seen,
                          lastSeenSecondsAgo: max(now - seen, 0))
        }
        let latest = try Row.fetchAll(db, sql: """
            SELECT job_id, item, path, reason FROM item_errors WHERE (? IS NULL OR job_id = ?) ORDER BY rowid DESC LIMIT ?
            """, arguments: [jobId, jobId, maxItemErrors]).map {
            LatestItemError(job: $0["job_id"], item: $0["item"], path: $0["path"], reason: $0["reason"])
        }
        return JobStatusReport(jobs: jobs, workers: workers, latestItemErrors: latest, now: now)
    }

    /// The JSON document of `status --json` and `/api/jobs` (keys sorted, so it diffs well).
    public func json(pretty: Bool = true) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    public func render() -> String {
        var lines: [String] = []
        if jobs.isEmpty { lines.append("no jobs") }
        for j in jobs {
            let width = 30
            let filled = Int((j.progress * Double(width)).rounded(.down))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            lines.append("job \(j.id) \(j.kind) [\(j.state)] \(j.outputDir)")
            lines.append(String(format: "  [%@] %5.1f%%  %d/%d items", bar, j.progress * 100, j.doneItems, j.totalItems))
            lines.append("  shards: \(j.doneShards) done, \(j.runningShards) running, \(j.failedShards) failed, \(j.pendingShards) pending (of \(j.totalShards))")
            if let start = j.startedAt {
                var s = String(format: "  %.1f items/s over %@", j.itemsPerSecond,
                               Self.duration(max((j.finishedAt ?? now) - start, 1e-9)))
                if let eta = j.etaSeconds { s += ", ETA " + Self.duration(eta) }
                lines.append(s)
            }
            if let summary = j.summary { lines.append("  summary: \(summary)") }
            for f in j.failures { lines.append("  failed shard \(f.index): \(f.reason)") }
            if j.itemErrorCount > 0 {
                lines.append("  item errors: \(j.itemErrorCount)")
                for e in j.itemErrors { lines.append("    item \(e.item) \(e.path): \(e.reason)") }
                if j.itemErrorCount > j.itemErrors.count { lines.append("    ... \(j.itemErrorCount - j.itemErrors.count) more") }
            }
        }
        if !workers.isEmpty {
            lines.append("workers:")
            for w in workers {
                lines.append(String(format: "  %@ %@ %@  %d shards, %d items, %.2f items/s, seen %@ ago", w.id, w.host,
                                    w.connected ? "connected" : "gone", w.shardsDone, w.itemsDone, w.itemsPerSecond,
                                    Self.duration(w.lastSeenSecondsAgo)))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// "12.3s", "4m05s", "2h10m".
    public static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 60 { return String(format: "%.1fs", s) }
        if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
    }
}
