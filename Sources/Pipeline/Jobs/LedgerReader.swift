import Foundation
import GRDB

/// A read-only connection to a ledger, for watchers that must never slow the coordinator:
/// in WAL mode readers do not block the writer, and this connection shares nothing (no lock,
/// no cache) with the `Ledger` the coordinator loop writes through.
public final class LedgerReader: @unchecked Sendable {
    public let path: String
    private let db: DatabaseQueue

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        config.label = "ledger-reader"
        guard FileManager.default.fileExists(atPath: path) else { throw JobError.ledger("no ledger at \(path)") }
        do { db = try DatabaseQueue(path: path, configuration: config) } catch let e as DatabaseError {
            throw JobError.ledger("cannot open \(path) read-only: \(e.message ?? e.description)")
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try db.read(body) } catch let e as DatabaseError {
            throw JobError.ledger(e.message ?? e.description)
        }
    }

    public func status(jobId: Int64? = nil, maxItemErrors: Int = 20) throws -> JobStatusReport {
        let now = Date().timeIntervalSince1970
        return try read { try JobStatusReport.load($0, now: now, jobId: jobId, maxItemErrors: maxItemErrors) }
    }

    /// The newest sample images of a job: the PNG outputs of its most recently finished shards
    /// (at most `count`, in name order), as absolute paths. Empty for a job without PNGs.
    public func latestImages(jobId: Int64, count: Int) throws -> [String] {
        try read { db in
            guard let dir = try String.fetchOne(db, sql: "SELECT output_dir FROM jobs WHERE id = ?", arguments: [jobId]) else {
                throw JobError.unknownJob(jobId)
            }
            let rel = try String.fetchAll(db, sql: """
                SELECT o.path FROM outputs o JOIN shards s ON s.id = o.shard_id
                WHERE o.job_id = ? AND o.path LIKE '%.png' ORDER BY s.done_at DESC, o.path DESC LIMIT ?
                """, arguments: [jobId, count])
            return rel.sorted().map { dir + "/" + $0 }
        }
    }
}
