import Foundation
import GRDB
import PipelineFiles

/// What `dit-coordinator status` shows, read from the ledger in one snapshot.
public struct JobStatusReport {
    public struct Job {
        public var id: Int64
        public var kind: String
        public var state: String
        public var outputDir: String
        public var totalShards: Int
        public var totalItems: Int
        public var doneShards: Int
        public var leasedShards: Int
        public var failedShards: Int
        public var doneItems: Int
        public var startedAt: Double?
        public var finishedAt: Double?
        public var summary: String?
        public var failures: [(index: Int, reason: String)]
        public var itemErrors: [ItemFailure]
        public var itemErrorCount: Int
    }
    public struct Worker {
        public var id: String
        public var host: String
        public var connected: Bool
        public var shardsDone: Int
        public var itemsDone: Int
        public var busySeconds: Double
        public var lastSeen: Double
        public var itemsPerSecond: Double { busySeconds > 0 ? Double(itemsDone) / busySeconds : 0 }
    }
    public var jobs: [Job]
    public var workers: [Worker]
    public var now: Double

    public static func load(ledger: Ledger, jobId: Int64? = nil, maxItemErrors: Int = 20) throws -> JobStatusReport {
        let now = ledger.clock()
        return try ledger.read { db in
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
                    """, arguments: [id]).map { (index: $0["idx"] as Int, reason: ($0["last_error"] as String?) ?? "") }
                let errors = try Row.fetchAll(db, sql: """
                    SELECT item, path, reason FROM item_errors WHERE job_id = ? ORDER BY item LIMIT ?
                    """, arguments: [id, maxItemErrors]).map { ItemFailure(item: $0["item"], path: $0["path"], reason: $0["reason"]) }
                return Job(id: id, kind: r["kind"], state: r["state"], outputDir: r["output_dir"],
                           totalShards: r["total_shards"], totalItems: r["total_items"], doneShards: r["done_shards"],
                           leasedShards: r["leased_shards"], failedShards: r["failed_shards"], doneItems: r["done_items"],
                           startedAt: r["started_at"], finishedAt: r["finished_at"], summary: r["summary"],
                           failures: failures, itemErrors: errors, itemErrorCount: r["n_errors"])
            }
            let workers = try Row.fetchAll(db, sql: "SELECT * FROM workers ORDER BY id").map {
                Worker(id: $0["id"], host: $0["host"], connected: ($0["connected"] as Int) != 0, shardsDone: $0["shards_done"],
                       itemsDone: $0["items_done"], busySeconds: $0["busy_seconds"], lastSeen: $0["last_seen"])
            }
            return JobStatusReport(jobs: jobs, workers: workers, now: now)
        }
    }

    public func render() -> String {
        var lines: [String] = []
        if jobs.isEmpty { lines.append("no jobs") }
        for j in jobs {
            let frac = j.totalItems > 0 ? Double(j.doneItems) / Double(j.totalItems) : 0
            let width = 30
            let filled = Int((frac * Double(width)).rounded(.down))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            lines.append("job \(j.id) \(j.kind) [\(j.state)] \(j.outputDir)")
            lines.append(String(format: "  [%@] %5.1f%%  %d/%d items", bar, frac * 100, j.doneItems, j.totalItems))
            let pending = j.totalShards - j.doneShards - j.leasedShards - j.failedShards
            lines.append("  shards: \(j.doneShards) done, \(j.leasedShards) running, \(j.failedShards) failed, \(pending) pending (of \(j.totalShards))")
            if let start = j.startedAt {
                let elapsed = max((j.finishedAt ?? now) - start, 1e-9)
                let rate = Double(j.doneItems) / elapsed
                var s = String(format: "  %.1f items/s over %@", rate, Self.duration(elapsed))
                if j.state == "running", rate > 0 {
                    s += ", ETA " + Self.duration(Double(j.totalItems - j.doneItems) / rate)
                }
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
                                    Self.duration(max(now - w.lastSeen, 0))))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        if s < 60 { return String(format: "%.1fs", s) }
        if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh%02dm", Int(s) / 3600, (Int(s) % 3600) / 60)
    }
}
