import Foundation
import GRDB
import Metrics
import PipelineMessaging

/// The coordinator's durable state: a SQLite database (WAL) of jobs, shards, attempts,
/// leases, workers, outputs and item errors. Every state transition is one SQL transaction,
/// so a process killed at any instant leaves the ledger at a transition boundary.
///
/// Several processes may open the same ledger (the serving coordinator plus `submit`,
/// `status`, `cancel` and `retry` commands); writers take the lock up front (IMMEDIATE
/// transactions) and wait for each other (busy timeout).
public final class Ledger {
    public let path: String
    let db: DatabaseQueue
    /// Seconds since the epoch; injectable so tests drive lease expiry.
    public var clock: () -> Double = { Date().timeIntervalSince1970 }
    private var jobCache: [Int64: (kind: String, spec: Data, outputDir: String)] = [:]
    /// Commit latency by the job kinds a transaction touched (`LoopMetric.ledgerCommit`).
    private let commitTimers = PerKind(timer: .ledgerCommit)
    private var touchedKinds: Set<String> = []

    /// `busyTimeout`: how long a write waits for another process's lock before it fails with
    /// SQLITE_BUSY (the serving coordinator's loop handles that as one failed message).
    public init(path: String, busyTimeout: Double = 10) throws {
        self.path = path
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        config.label = "ledger"
        config.prepareDatabase { db in
            // WAL + NORMAL: a commit survives any process crash (SIGKILL); only an OS crash
            // or power loss can drop the last commits, which the lease protocol tolerates.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            db = try Ledger.open(path: path, configuration: config)
        } catch let e as DatabaseError {
            throw JobError.ledger("cannot open \(path): \(e.message ?? e.description)")
        }
    }

    /// A ledger whose schema has migrations this build does not know was written by a newer
    /// version: reading it could misread it and writing it could corrupt it (GRDB ignores
    /// unknown migrations), so it is refused before anything is written.
    static func refuseNewer(_ db: DatabaseQueue, path: String) throws {
        let unknown = try db.read { db -> [String] in
            guard try db.tableExists("grdb_migrations") else { return [] }
            let known = Set(LedgerSchema.migrator.migrations)
            return try LedgerSchema.migrator.appliedIdentifiers(db).filter { !known.contains($0) }.sorted()
        }
        guard unknown.isEmpty else {
            throw JobError.ledger("\(path) was written by a newer version of this pipeline (schema migrations unknown to this build: \(unknown.map { "\"\($0)\"" }.joined(separator: ", "))); use that version, or another ledger")
        }
    }

    /// Opens the database and applies the schema migrations. Two processes opening a fresh
    /// ledger at once (`serve` starting while `submit` creates the file) race: switching the
    /// new file to WAL can find it locked, and both can see "no migrations applied" and try to
    /// create the tables. The loser fails; once the winner has committed, a retry succeeds.
    static func open(path: String, configuration: Configuration) throws -> DatabaseQueue {
        var attempt = 0
        while true {
            do {
                let db = try DatabaseQueue(path: path, configuration: configuration)
                try refuseNewer(db, path: path)
                try LedgerSchema.migrator.migrate(db)
                return db
            } catch let e as DatabaseError {
                attempt += 1
                if attempt >= 40 { throw e }
                usleep(50_000)
            }
        }
    }

    /// The open group-commit transaction (see `batch`), if any.
    private var batchDatabase: Database?

    /// One transition = one IMMEDIATE transaction (or part of the open `batch`).
    @discardableResult
    func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        // Inside a batch a failing transition throws out of the batch, which then rolls back
        // whole: no transition is ever applied in part.
        if let db = batchDatabase { return try body(db) }
        return try timedCommit {
            var result: T?
            try db.inTransaction(.immediate) { db in
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    /// Group commit: every transition made inside `body` is written in ONE transaction
    /// so the coordinator pays one commit for a burst of
    /// messages. Nothing decided inside may be sent before this returns.
    public func batch<T>(_ body: () throws -> T) throws -> T {
        if batchDatabase != nil { return try body() }
        return try timedCommit {
            var result: T?
            try db.inTransaction(.immediate) { db in
                batchDatabase = db
                defer { batchDatabase = nil }
                result = try body()
                return .commit
            }
            return result!
        }
    }

    /// Runs one write transaction and records its latency (lock wait + body + commit) once
    /// for each job kind it touched.
    private func timedCommit<T>(_ run: () throws -> T) throws -> T {
        touchedKinds.removeAll(keepingCapacity: true)
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let ns = Int64(DispatchTime.now().uptimeNanoseconds &- start)
            if touchedKinds.isEmpty { commitTimers["none"].recordNanoseconds(ns) }
            for kind in touchedKinds { commitTimers[kind].recordNanoseconds(ns) }
        }
        do { return try run() } catch let e as DatabaseError {
            throw JobError.ledger(e.message ?? e.description)
        }
    }

    /// The kind of a job (nil for an unknown job); cached, as it never changes.
    public func kind(jobId: Int64) throws -> String? {
        if let c = jobCache[jobId] { return c.kind }
        return try read { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [jobId]) != nil else { return nil }
            return try jobInfo(db, jobId).kind
        }
    }

    /// Inside a `batch`: runs `body` as a savepoint, so a transition that fails (a constraint, a
    /// full disk) is undone alone and the batch goes on; the error is rethrown. Outside a
    /// batch each transition is its own transaction already.
    public func savepoint<T>(_ body: () throws -> T) throws -> T {
        guard let db = batchDatabase else { return try body() }
        do {
            var result: T?
            try db.inSavepoint {
                result = try body()
                return .commit
            }
            return result!
        } catch let e as DatabaseError {
            throw JobError.ledger(e.message ?? e.description)
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        if let db = batchDatabase { return try body(db) }
        do { return try db.read(body) } catch let e as DatabaseError {
            throw JobError.ledger(e.message ?? e.description)
        }
    }

    // MARK: jobs

    /// Records a planned job and its shards (one transaction) and returns its id.
    public func createJob(kind: String, spec: Data, plan: JobPlan, maxAttempts: Int = 3,
                          leaseSeconds: Double = 60) throws -> Int64 {
        guard maxAttempts >= 1 else { throw JobError.badSpec(kind: kind, reason: "max attempts must be >= 1") }
        guard leaseSeconds > 0 else { throw JobError.badSpec(kind: kind, reason: "lease seconds must be > 0") }
        return try transaction { db in
            try db.execute(sql: """
                INSERT INTO jobs (kind, spec, output_dir, state, total_shards, total_items, max_attempts,
                                  lease_seconds, created_at)
                VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)
                """, arguments: [kind, String(decoding: spec, as: UTF8.self), plan.outputDir, plan.shards.count,
                                 plan.totalItems, maxAttempts, leaseSeconds, clock()])
            let job = db.lastInsertedRowID
            let insert = try db.cachedStatement(sql: """
                INSERT INTO shards (job_id, idx, item_start, item_end, spec, state) VALUES (?, ?, ?, ?, ?, 'pending')
                """)
            for (i, s) in plan.shards.enumerated() {
                try insert.execute(arguments: [job, i, s.itemStart, s.itemEnd, String(decoding: s.spec, as: UTF8.self)])
            }
            return job
        }
    }

    /// The newest job with this kind, spec and output folder (so a re-run `run` resumes it).
    public func findJob(kind: String, spec: Data, outputDir: String) throws -> Int64? {
        try read { db in
            try Int64.fetchOne(db, sql: """
                SELECT id FROM jobs WHERE kind = ? AND spec = ? AND output_dir = ? ORDER BY id DESC LIMIT 1
                """, arguments: [kind, String(decoding: spec, as: UTF8.self), outputDir])
        }
    }

    func jobInfo(_ db: Database, _ job: Int64) throws -> (kind: String, spec: Data, outputDir: String) {
        if let c = jobCache[job] { touchedKinds.insert(c.kind); return c }
        guard let row = try Row.fetchOne(db, sql: "SELECT kind, spec, output_dir FROM jobs WHERE id = ?", arguments: [job])
        else { throw JobError.unknownJob(job) }
        let info = (kind: row["kind"] as String, spec: Data((row["spec"] as String).utf8), outputDir: row["output_dir"] as String)
        jobCache[job] = info
        touchedKinds.insert(info.kind)
        return info
    }

    // MARK: workers

    /// A worker said hello (or reconnected), bound to `credential` (see `WorkerCredential`).
    public func workerSeen(id: String, host: String, pid: Int, threads: Int, credential: String? = nil) throws {
        let now = clock()
        try transaction { db in
            try db.execute(sql: """
                INSERT INTO workers (id, host, pid, threads, first_seen, last_seen, connected, credential)
                VALUES (?, ?, ?, ?, ?, ?, 1, ?)
                ON CONFLICT(id) DO UPDATE SET host = excluded.host, pid = excluded.pid, threads = excluded.threads,
                    last_seen = excluded.last_seen, connected = 1, credential = excluded.credential
                """, arguments: [id, host, pid, threads, now, now, credential])
        }
    }

    /// The credential a worker id was last seen with (nil: never seen, or an older worker).
    public func workerCredential(id: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT credential FROM workers WHERE id = ?", arguments: [id]) }
    }

    /// Workers holding at least one lease.
    public func leaseHolders() throws -> Set<String> {
        try read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT worker_id FROM leases")) }
    }

    // MARK: dispatch

    /// Leases the next pending shard of the oldest running job to `workerId`: bumps the
    /// shard's attempt, records the attempt and the lease, all in one transaction. The
    /// caller sends the ASSIGN only after this returns.
    public func leaseNext(workerId: String) throws -> LeaseGrant? {
        let now = clock()
        return try transaction { db -> LeaseGrant? in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT s.id, s.job_id, s.idx, s.item_start, s.item_end, s.spec, s.attempts, j.lease_seconds
                FROM shards s JOIN jobs j ON j.id = s.job_id
                WHERE s.state = ? AND j.state = ?
                ORDER BY s.job_id, s.idx LIMIT 1
                """), arguments: [ShardState.pending, JobState.running.rawValue]) else { return nil }
            let shard: Int64 = row["id"], job: Int64 = row["job_id"]
            let attempt = (row["attempts"] as Int) + 1
            let expires = now + (row["lease_seconds"] as Double)
            try db.cachedStatement(sql: "UPDATE shards SET state = ?, attempts = ? WHERE id = ?")
                .execute(arguments: [ShardState.leased, attempt, shard])
            try db.cachedStatement(sql: """
                INSERT INTO attempts (shard_id, attempt, worker_id, started_at, outcome) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [shard, attempt, workerId, now, AttemptOutcome.running])
            try db.cachedStatement(sql: "INSERT INTO leases (shard_id, attempt, worker_id, expires_at) VALUES (?, ?, ?, ?)")
                .execute(arguments: [shard, attempt, workerId, expires])
            try db.cachedStatement(sql: "UPDATE jobs SET started_at = ? WHERE id = ? AND started_at IS NULL")
                .execute(arguments: [now, job])
            let info = try jobInfo(db, job)
            let task = ShardTask(kind: info.kind, jobId: job, shardIndex: row["idx"], itemStart: row["item_start"],
                                 itemEnd: row["item_end"], outputDir: info.outputDir, jobSpec: info.spec,
                                 shardSpec: Data((row["spec"] as String).utf8))
            return LeaseGrant(jobId: job, shardId: shard, attempt: attempt, workerId: workerId, expiresAt: expires, task: task)
        }
    }

    /// The current lease of a shard, if it is (job, shard, attempt).
    func currentLease(_ db: Database, job: Int64, shard: Int64, attempt: Int) throws -> (worker: String, items: Int)? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT l.worker_id, s.item_end - s.item_start AS items
            FROM leases l JOIN shards s ON s.id = l.shard_id JOIN jobs j ON j.id = s.job_id
            WHERE l.shard_id = ? AND l.attempt = ? AND s.job_id = ? AND s.state = ? AND j.state = ?
            """), arguments: [shard, attempt, job, ShardState.leased, JobState.running.rawValue]) else { return nil }
        _ = try jobInfo(db, job)   // notes the job's kind for the commit latency
        return (row["worker_id"], row["items"])
    }

    /// The shard task of the current lease (job, shard, attempt) when `workerId` holds it; nil otherwise.
    public func leasedTask(jobId: Int64, shardId: Int64, attempt: Int, workerId: String) throws -> ShardTask? {
        try read { db in
            guard let lease = try currentLease(db, job: jobId, shard: shardId, attempt: attempt), lease.worker == workerId,
                  let row = try Row.fetchOne(db, sql: "SELECT idx, item_start, item_end, spec FROM shards WHERE id = ?",
                                             arguments: [shardId]) else { return nil }
            let info = try jobInfo(db, jobId)
            return ShardTask(kind: info.kind, jobId: jobId, shardIndex: row["idx"], itemStart: row["item_start"],
                             itemEnd: row["item_end"], outputDir: info.outputDir, jobSpec: info.spec,
                             shardSpec: Data((row["spec"] as String).utf8))
        }
    }

    /// The output folder of the job a report names, if the report matches a current lease.
    public func leaseOutputDir(jobId: Int64, shardId: Int64, attempt: Int) throws -> String? {
        try read { db in
            guard try currentLease(db, job: jobId, shard: shardId, attempt: attempt) != nil else { return nil }
            return try jobInfo(db, jobId).outputDir
        }
    }

    /// A job's output folder (nil for an unknown job); cached, as it never changes.
    public func outputDir(jobId: Int64) throws -> String? {
        if let c = jobCache[jobId] { return c.outputDir }
        return try read { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [jobId]) != nil else { return nil }
            return try jobInfo(db, jobId).outputDir
        }
    }

    /// Records a verified RESULT: shard done, outputs and item errors recorded, lease dropped,
    /// worker rates updated — one transaction. Anything that does not match the current
    /// lease is `.stale` and changes nothing.
    public func complete(_ c: ShardCompletion, workerId: String) throws -> ReportOutcome {
        let now = clock()
        return try transaction { db -> ReportOutcome in
            guard let lease = try currentLease(db, job: c.jobId, shard: c.shardId, attempt: c.attempt) else {
                return .stale("no current lease for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt)")
            }
            guard lease.worker == workerId else {
                return .stale("shard \(c.shardId) attempt \(c.attempt) is leased to \(lease.worker), not \(workerId)")
            }
            let items = lease.items
            try db.cachedStatement(sql: "UPDATE shards SET state = ?, done_at = ?, last_error = NULL WHERE id = ?")
                .execute(arguments: [ShardState.done, now, c.shardId])
            try db.cachedStatement(sql: "DELETE FROM leases WHERE shard_id = ?").execute(arguments: [c.shardId])
            try db.cachedStatement(sql: """
                UPDATE attempts SET outcome = ?, ended_at = ?, items = ?, elapsed = ?, metrics = ?
                WHERE shard_id = ? AND attempt = ?
                """).execute(arguments: [AttemptOutcome.done, now, items, c.elapsed, c.metrics.isEmpty ? nil : Ledger.json(c.metrics),
                                         c.shardId, c.attempt])
            let out = try db.cachedStatement(sql: """
                INSERT INTO outputs (job_id, shard_id, path, size, sha256) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(job_id, path) DO UPDATE SET shard_id = excluded.shard_id, size = excluded.size, sha256 = excluded.sha256
                """)
            for o in c.outputs { try out.execute(arguments: [c.jobId, c.shardId, o.path, o.size, o.sha256]) }
            let err = try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO item_errors (job_id, shard_id, item, path, reason) VALUES (?, ?, ?, ?, ?)
                """)
            for e in c.itemErrors { try err.execute(arguments: [c.jobId, c.shardId, e.item, e.path, e.reason]) }
            try db.cachedStatement(sql: """
                UPDATE workers SET last_seen = ?, shards_done = shards_done + 1, items_done = items_done + ?,
                    busy_seconds = busy_seconds + ? WHERE id = ?
                """).execute(arguments: [now, items, c.elapsed.isFinite ? max(c.elapsed, 0) : 0, workerId])
            return .accepted
        }
    }

    /// A failed attempt (worker FAILED, or outputs that did not verify): back to pending, or
    /// failed with its reason once the attempts are used up (or at once if not retryable).
    /// `abandoned`: the worker gave the shard up on SIGTERM (preemption): the attempt ends
    /// `released` and does not count toward the job's max attempts.
    public func fail(jobId: Int64, shardId: Int64, attempt: Int, workerId: String, reason: String,
                     retryable: Bool, abandoned: Bool = false) throws -> ReportOutcome {
        let now = clock()
        return try transaction { db -> ReportOutcome in
            guard let lease = try currentLease(db, job: jobId, shard: shardId, attempt: attempt), lease.worker == workerId else {
                return .stale("no current lease for job \(jobId) shard \(shardId) attempt \(attempt) held by \(workerId)")
            }
            let failed = try endAttempt(db, shard: shardId, attempt: attempt, outcome: abandoned ? .released : .failed,
                                        reason: reason, retryable: retryable || abandoned, now: now, counts: !abandoned)
            return failed ? .shardFailed : .retrying
        }
    }

    /// Ends an attempt without a result; returns true when the shard is now failed.
    private func endAttempt(_ db: Database, shard: Int64, attempt: Int, outcome: AttemptOutcome, reason: String,
                            retryable: Bool, now: Double, counts: Bool = true) throws -> Bool {
        if !counts {
            // Not the shard's fault (the coordinator dismissed its worker): no attempt used up.
            try db.cachedStatement(sql: "UPDATE shards SET attempt_base = attempt_base + 1 WHERE id = ?").execute(arguments: [shard])
        }
        guard let row = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT s.attempts - s.attempt_base AS used, j.max_attempts, s.job_id FROM shards s JOIN jobs j ON j.id = s.job_id
            WHERE s.id = ?
            """), arguments: [shard]) else { return false }
        _ = try jobInfo(db, row["job_id"])   // notes the job's kind for the commit latency
        let exhausted = !retryable || (row["used"] as Int) >= (row["max_attempts"] as Int)
        try db.cachedStatement(sql: "DELETE FROM leases WHERE shard_id = ?").execute(arguments: [shard])
        try db.cachedStatement(sql: "UPDATE attempts SET outcome = ?, ended_at = ?, reason = ? WHERE shard_id = ? AND attempt = ?")
            .execute(arguments: [outcome, now, reason, shard, attempt])
        let why = exhausted && retryable ? "\(reason) (after \(row["used"] as Int) attempts)" : reason
        try db.cachedStatement(sql: "UPDATE shards SET state = ?, last_error = ? WHERE id = ?")
            .execute(arguments: [exhausted ? ShardState.failed : ShardState.pending, why, shard])
        return exhausted
    }

    static func json(_ m: [String: Double]) -> String? {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return (try? e.encode(m)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The metrics of a job's accepted attempts, summed by name.
    public func doneMetrics(jobId: Int64) throws -> [String: Double] {
        try read { db in
            var sum: [String: Double] = [:]
            for text in try String.fetchAll(db, sql: """
                SELECT a.metrics FROM attempts a JOIN shards s ON s.id = a.shard_id
                WHERE s.job_id = ? AND a.outcome = ? AND a.metrics IS NOT NULL
                """, arguments: [jobId, AttemptOutcome.done]) {
                let m = (try? JSONDecoder().decode([String: Double].self, from: Data(text.utf8))) ?? [:]
                for (k, v) in m { sum[k, default: 0] += v }
            }
            return sum
        }
    }

    /// Leases past their deadline (lease start + the job's lease seconds: the longest a shard
    /// attempt may take) go back to pending (or failed past max attempts).
    public func expireLeases() throws -> [ExpiredLease] {
        let now = clock()
        return try transaction { db in
            let rows = try Row.fetchAll(db.cachedStatement(sql: """
                SELECT l.shard_id, l.attempt, l.worker_id, s.job_id FROM leases l JOIN shards s ON s.id = l.shard_id
                WHERE l.expires_at <= ?
                """), arguments: [now])
            return try rows.map { r in
                let failed = try endAttempt(db, shard: r["shard_id"], attempt: r["attempt"], outcome: .expired,
                                            reason: "lease expired (worker \(r["worker_id"] as String) silent)",
                                            retryable: true, now: now)
                return ExpiredLease(jobId: r["job_id"], shardId: r["shard_id"], attempt: r["attempt"],
                                    workerId: r["worker_id"], shardFailed: failed)
            }
        }
    }

    /// A worker disconnected or went silent: its leases end now (back to pending). `countsAsAttempt`
    /// false when the coordinator itself dismissed the worker (the shard did nothing wrong).
    public func releaseWorker(_ workerId: String, reason: String, countsAsAttempt: Bool = true) throws -> [ExpiredLease] {
        try transaction { db in
            try db.execute(sql: "UPDATE workers SET connected = 0 WHERE id = ?", arguments: [workerId])
            return try releaseLeases(db, of: workerId, reason: reason, countsAsAttempt: countsAsAttempt) { _, _, _ in true }
        }
    }

    /// Ends the leases of `workerId` that `release` selects (all by default), back to pending
    /// (or failed past max attempts when they count).
    public func releaseLeases(of workerId: String, reason: String, countsAsAttempt: Bool,
                              where release: (_ jobId: Int64, _ shardId: Int64, _ attempt: Int) -> Bool = { _, _, _ in true })
        throws -> [ExpiredLease] {
        try transaction { db in try releaseLeases(db, of: workerId, reason: reason, countsAsAttempt: countsAsAttempt, where: release) }
    }

    private func releaseLeases(_ db: Database, of workerId: String, reason: String, countsAsAttempt: Bool,
                               where release: (Int64, Int64, Int) -> Bool) throws -> [ExpiredLease] {
        let now = clock()
        let rows = try Row.fetchAll(db, sql: """
            SELECT l.shard_id, l.attempt, s.job_id FROM leases l JOIN shards s ON s.id = l.shard_id WHERE l.worker_id = ?
            """, arguments: [workerId]).filter { release($0["job_id"], $0["shard_id"], $0["attempt"]) }
        return try rows.map { r in
            let failed = try endAttempt(db, shard: r["shard_id"], attempt: r["attempt"], outcome: .released,
                                        reason: "worker \(workerId) \(reason)", retryable: true, now: now,
                                        counts: countsAsAttempt)
            return ExpiredLease(jobId: r["job_id"], shardId: r["shard_id"], attempt: r["attempt"],
                                workerId: workerId, shardFailed: failed)
        }
    }
}
