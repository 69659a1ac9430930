import GRDB

/// The ledger's schema, as ordered migrations. A new column or table is a new migration
/// appended here; a registered migration is never edited once released.
enum LedgerSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: jobs, shards, attempts, leases, workers, outputs, item errors") { db in
            try db.execute(sql: """
            CREATE TABLE jobs (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                kind          TEXT NOT NULL,
                spec          TEXT NOT NULL,              -- the job spec, JSON (kind-defined)
                output_dir    TEXT NOT NULL,
                state         TEXT NOT NULL CHECK (state IN ('running','done','partially_failed','failed','cancelled')),
                total_shards  INTEGER NOT NULL,
                total_items   INTEGER NOT NULL,
                max_attempts  INTEGER NOT NULL,
                lease_seconds REAL NOT NULL,
                created_at    REAL NOT NULL,
                started_at    REAL,                       -- first lease
                finished_at   REAL,
                summary       TEXT                        -- end-of-job summary (failures, finalize)
            );
            CREATE TABLE shards (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                idx           INTEGER NOT NULL,
                item_start    INTEGER NOT NULL,
                item_end      INTEGER NOT NULL,           -- exclusive
                spec          TEXT NOT NULL,              -- shard spec, JSON (kind-defined)
                state         TEXT NOT NULL CHECK (state IN ('pending','leased','done','failed')),
                attempts      INTEGER NOT NULL DEFAULT 0, -- attempts started so far
                attempt_base  INTEGER NOT NULL DEFAULT 0, -- attempts before the last `retry`
                last_error    TEXT,
                done_at       REAL,
                UNIQUE (job_id, idx)
            );
            CREATE INDEX shards_by_state ON shards(state, job_id, idx);
            CREATE TABLE attempts (
                shard_id      INTEGER NOT NULL REFERENCES shards(id) ON DELETE CASCADE,
                attempt       INTEGER NOT NULL,
                worker_id     TEXT NOT NULL,
                started_at    REAL NOT NULL,
                ended_at      REAL,
                outcome       TEXT NOT NULL CHECK (outcome IN ('running','done','failed','expired','released','cancelled')),
                reason        TEXT,
                items         INTEGER,
                elapsed       REAL,
                PRIMARY KEY (shard_id, attempt)
            );
            CREATE TABLE leases (
                shard_id      INTEGER PRIMARY KEY REFERENCES shards(id) ON DELETE CASCADE,
                attempt       INTEGER NOT NULL,
                worker_id     TEXT NOT NULL,
                expires_at    REAL NOT NULL
            );
            CREATE INDEX leases_by_worker ON leases(worker_id);
            CREATE INDEX leases_by_expiry ON leases(expires_at);
            CREATE TABLE workers (
                id            TEXT PRIMARY KEY,
                host          TEXT NOT NULL,
                pid           INTEGER NOT NULL,
                threads       INTEGER NOT NULL,
                first_seen    REAL NOT NULL,
                last_seen     REAL NOT NULL,
                connected     INTEGER NOT NULL DEFAULT 1,
                shards_done   INTEGER NOT NULL DEFAULT 0,
                items_done    INTEGER NOT NULL DEFAULT 0,
                busy_seconds  REAL NOT NULL DEFAULT 0     -- items/s = items_done / busy_seconds
            );
            CREATE TABLE outputs (
                job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                shard_id      INTEGER REFERENCES shards(id) ON DELETE CASCADE,  -- NULL: written by finalize
                path          TEXT NOT NULL,              -- relative to the job's output_dir
                size          INTEGER NOT NULL,
                sha256        TEXT NOT NULL,
                PRIMARY KEY (job_id, path)
            );
            CREATE INDEX outputs_by_shard ON outputs(shard_id);
            CREATE TABLE item_errors (
                job_id        INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
                shard_id      INTEGER NOT NULL REFERENCES shards(id) ON DELETE CASCADE,
                item          INTEGER NOT NULL,
                path          TEXT NOT NULL,
                reason        TEXT NOT NULL,
                PRIMARY KEY (job_id, item)
            );
            """)
        }
        m.registerMigration("v2: per-attempt metrics reported by workers") { db in
            try db.execute(sql: "ALTER TABLE attempts ADD COLUMN metrics TEXT")   // JSON object of numbers
        }
        m.registerMigration("v3: the credential a worker id is bound to") { db in
            // "curve:<public key>" and/or "session:<sha256 of the per-process token>" (see
            // `WorkerCredential`); a READY with another credential is another process.
            try db.execute(sql: "ALTER TABLE workers ADD COLUMN credential TEXT")
        }
        return m
    }
}
