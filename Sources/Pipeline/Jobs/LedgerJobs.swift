import Foundation
import GRDB
import PipelineFiles

/// A running job whose shards have all ended (done or failed): ready for its finalize step
/// or its partial-failure summary.
public struct SettledJob: Equatable {
    public var jobId: Int64
    public var kind: String
    public var spec: Data
    public var outputDir: String
    public var failedShards: [(index: Int, reason: String)]
    public static func == (a: SettledJob, b: SettledJob) -> Bool {
        a.jobId == b.jobId && a.failedShards.map(\.index) == b.failedShards.map(\.index)
    }
}

extension Ledger {
    /// Running jobs with no shard pending or leased.
    public func settledJobs() throws -> [SettledJob] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, kind, spec, output_dir FROM jobs j WHERE state = 'running'
                AND NOT EXISTS (SELECT 1 FROM shards s WHERE s.job_id = j.id AND s.state IN ('pending', 'leased'))
                ORDER BY id
                """)
            return try rows.map { r in
                let id: Int64 = r["id"]
                let failed = try Row.fetchAll(db, sql: """
                    SELECT idx, last_error FROM shards WHERE job_id = ? AND state = 'failed' ORDER BY idx
                    """, arguments: [id]).map { (index: $0["idx"] as Int, reason: ($0["last_error"] as String?) ?? "unknown") }
                return SettledJob(jobId: id, kind: r["kind"], spec: Data((r["spec"] as String).utf8),
                                  outputDir: r["output_dir"], failedShards: failed)
            }
        }
    }

    /// Ends a job: records finalize outputs (if any) and the final state in one transaction.
    /// Only a job still `running` with no open shard is ended; returns false otherwise.
    @discardableResult
    public func finishJob(_ jobId: Int64, state: JobState, summary: String?, finalOutputs: [FileDigest] = []) throws -> Bool {
        let now = clock()
        return try transaction { db -> Bool in
            let open = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM jobs j WHERE j.id = ? AND j.state = 'running'
                AND NOT EXISTS (SELECT 1 FROM shards s WHERE s.job_id = j.id AND s.state IN ('pending', 'leased'))
                """, arguments: [jobId]) ?? 0
            guard open == 1 else { return false }
            for o in finalOutputs {
                try db.execute(sql: """
                    INSERT OR REPLACE INTO outputs (job_id, shard_id, path, size, sha256) VALUES (?, NULL, ?, ?, ?)
                    """, arguments: [jobId, o.path, o.size, o.sha256])
            }
            try db.execute(sql: "UPDATE jobs SET state = ?, finished_at = ?, summary = ? WHERE id = ?",
                           arguments: [state.rawValue, now, summary, jobId])
            return true
        }
    }

    /// Cancels a job: its leases are dropped (late results are then stale) and nothing more is dispatched.
    public func cancel(_ jobId: Int64) throws {
        let now = clock()
        try transaction { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE id = ?", arguments: [jobId]) == 1 else {
                throw JobError.unknownJob(jobId)
            }
            try db.execute(sql: """
                UPDATE attempts SET outcome = 'cancelled', ended_at = ?, reason = 'job cancelled'
                WHERE outcome = 'running' AND shard_id IN (SELECT id FROM shards WHERE job_id = ?)
                """, arguments: [now, jobId])
            try db.execute(sql: "DELETE FROM leases WHERE shard_id IN (SELECT id FROM shards WHERE job_id = ?)", arguments: [jobId])
            try db.execute(sql: "UPDATE shards SET state = 'pending' WHERE job_id = ? AND state = 'leased'", arguments: [jobId])
            try db.execute(sql: """
                UPDATE jobs SET state = 'cancelled', finished_at = ?, summary = 'cancelled' WHERE id = ? AND state = 'running'
                """, arguments: [now, jobId])
        }
    }

    /// Puts a job's failed shards back to pending with a fresh attempt budget, and the job
    /// (partially failed, failed or cancelled) back to running. Returns the shards reopened.
    @discardableResult
    public func retry(_ jobId: Int64) throws -> Int {
        try transaction { db -> Int in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [jobId]) else {
                throw JobError.unknownJob(jobId)
            }
            guard state != JobState.done.rawValue else { return 0 }
            try db.execute(sql: """
                UPDATE shards SET state = 'pending', attempt_base = attempts WHERE job_id = ? AND state = 'failed'
                """, arguments: [jobId])
            let n = db.changesCount
            try db.execute(sql: "UPDATE jobs SET state = 'running', finished_at = NULL, summary = NULL WHERE id = ?",
                           arguments: [jobId])
            return n
        }
    }

    /// True while some job in the ledger is still `running` (its shards not all ended, or
    /// its finalize step not yet done). `serve --exit-when-done` stops once this is false.
    public func hasRunningJobs() throws -> Bool {
        try read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE state = 'running'") ?? 0 > 0
        }
    }

    public func jobState(_ jobId: Int64) throws -> JobState {
        try read { db in
            guard let s = try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [jobId]),
                  let st = JobState(rawValue: s) else { throw JobError.unknownJob(jobId) }
            return st
        }
    }

    /// All outputs a job recorded (shards' and finalize's), by path.
    public func outputs(jobId: Int64) throws -> [FileDigest] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT path, size, sha256 FROM outputs WHERE job_id = ? ORDER BY path", arguments: [jobId])
                .map { FileDigest(path: $0["path"], size: $0["size"], sha256: $0["sha256"]) }
        }
    }

    public func itemErrors(jobId: Int64) throws -> [ItemFailure] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT item, path, reason FROM item_errors WHERE job_id = ? ORDER BY item", arguments: [jobId])
                .map { ItemFailure(item: $0["item"], path: $0["path"], reason: $0["reason"]) }
        }
    }

    /// For each shard of a job: (index, state, number of attempts that ended `done`). The
    /// exactly-once property is: every shard `done` with exactly one `done` attempt.
    public func shardCompletions(jobId: Int64) throws -> [(index: Int, state: ShardState, doneAttempts: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.idx, s.state, (SELECT COUNT(*) FROM attempts a WHERE a.shard_id = s.id AND a.outcome = ?) AS n
                FROM shards s WHERE s.job_id = ? ORDER BY s.idx
                """, arguments: [AttemptOutcome.done, jobId]).map { (index: $0["idx"], state: $0["state"], doneAttempts: $0["n"]) }
        }
    }

    /// All attempts of one shard, oldest first: (attempt, worker, outcome, reason).
    public func attempts(jobId: Int64, shardIndex: Int) throws -> [(attempt: Int, worker: String, outcome: AttemptOutcome, reason: String?)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT a.attempt, a.worker_id, a.outcome, a.reason FROM attempts a JOIN shards s ON s.id = a.shard_id
                WHERE s.job_id = ? AND s.idx = ? ORDER BY a.attempt
                """, arguments: [jobId, shardIndex]).map { (attempt: $0["attempt"], worker: $0["worker_id"], outcome: $0["outcome"], reason: $0["reason"]) }
        }
    }
}

extension Ledger {
    /// How an attempt ended (`running` while leased), nil for an attempt the ledger never
    /// recorded. Tells a re-sent report from a stale one.
    public func attemptOutcome(jobId: Int64, shardId: Int64, attempt: Int) throws -> AttemptOutcome? {
        try read { db in
            try AttemptOutcome.fetchOne(db.cachedStatement(sql: """
                SELECT a.outcome FROM attempts a JOIN shards s ON s.id = a.shard_id
                WHERE a.shard_id = ? AND a.attempt = ? AND s.job_id = ?
                """), arguments: [shardId, attempt, jobId])
        }
    }

    /// When a job was created, first leased and ended (seconds since the epoch).
    public func jobTimes(_ jobId: Int64) throws -> (created: Double, started: Double?, finished: Double?) {
        try read { db in
            guard let r = try Row.fetchOne(db, sql: "SELECT created_at, started_at, finished_at FROM jobs WHERE id = ?",
                                           arguments: [jobId]) else { throw JobError.unknownJob(jobId) }
            return (r["created_at"], r["started_at"], r["finished_at"])
        }
    }
}
