import Foundation

/// (job, shard, attempt): one lease, the unit RESULT/FAILED and ACK refer to.
struct ReportKey: Hashable, CustomStringConvertible {
    var jobId: Int64
    var shardId: Int64
    var attempt: Int
    var description: String { "job \(jobId) shard \(shardId) attempt \(attempt)" }
}

extension WorkOutcome {
    /// The lease attempt the outcome reports on (what an ACK names).
    var reportKey: ReportKey {
        switch self {
        case .result(let r): return ReportKey(jobId: r.jobId, shardId: r.shardId, attempt: r.attempt)
        case .failed(let f): return ReportKey(jobId: f.jobId, shardId: f.shardId, attempt: f.attempt)
        }
    }
}

extension Acknowledgement {
    var reportKey: ReportKey { ReportKey(jobId: jobId, shardId: shardId, attempt: attempt) }
}

/// A worker's RESULT/FAILED reports from the moment a shard ends until the coordinator
/// acknowledges them (DITP/1 revision 2): waiting to be sent, then sent and unacknowledged.
/// Not thread-safe: `WorkerEndpoint` guards it with its lock.
struct WorkerReports {
    struct Pending {
        var outcome: WorkOutcome
        /// A freshly finished shard: its send is followed by REQUEST(1). Re-sends, and reports
        /// already waiting when a connection opens, ask for nothing (that connection's first
        /// REQUEST covers every free credit).
        var asksForMore: Bool
    }

    /// Reports to send, in order.
    private(set) var outbox: [Pending] = []
    /// Reports sent and not yet acknowledged, oldest first, with when they were last sent.
    private(set) var unacknowledged: [(outcome: WorkOutcome, sentAt: Double)] = []

    var hasUnsent: Bool { !outbox.isEmpty }

    /// The leases of every report not yet acknowledged (sent or not).
    var pendingKeys: [ReportKey] { outbox.map(\.outcome.reportKey) + unacknowledged.map(\.outcome.reportKey) }

    /// A shard's outcome, to be sent (with a REQUEST for more when `asksForMore`).
    mutating func add(_ outcome: WorkOutcome, asksForMore: Bool = true) {
        outbox.append(Pending(outcome: outcome, asksForMore: asksForMore))
    }

    /// A new connection: everything not acknowledged goes again, and nothing waiting asks for
    /// more. Returns how many reports are re-sent.
    mutating func reopen() -> Int {
        let again = unacknowledged.count
        outbox = unacknowledged.map { Pending(outcome: $0.outcome, asksForMore: false) }
            + outbox.map { Pending(outcome: $0.outcome, asksForMore: false) }
        unacknowledged.removeAll()
        return again
    }

    /// What to send now: the outbox, after reports unacknowledged for `resendInterval` joined it.
    mutating func takeDue(now: Double, resendInterval: Double) -> ArraySlice<Pending> {
        while let first = unacknowledged.first, now - first.sentAt >= resendInterval {
            unacknowledged.removeFirst()
            outbox.append(Pending(outcome: first.outcome, asksForMore: false))
        }
        defer { outbox.removeAll() }
        return outbox[...]
    }

    /// After sending: `unsent` (the queue was full) goes back to the front, `sent` waits for
    /// its ACK. Past `limit` unacknowledged the oldest are forgotten; returns how many.
    mutating func settle(unsent: ArraySlice<Pending>, sent: [WorkOutcome], at now: Double, limit: Int) -> Int {
        outbox.insert(contentsOf: unsent, at: 0)
        unacknowledged += sent.map { ($0, now) }
        let dropped = max(0, unacknowledged.count - limit)
        unacknowledged.removeFirst(dropped)
        return dropped
    }

    /// An ACK: the report is forgotten (with a re-send of it still waiting). False when no
    /// sent report had that key (an ACK for a re-send already acknowledged).
    mutating func acknowledge(_ key: ReportKey) -> Bool {
        let before = unacknowledged.count
        unacknowledged.removeAll { $0.outcome.reportKey == key }
        // A fresh report cannot have been acknowledged: it was never sent.
        outbox.removeAll { !$0.asksForMore && $0.outcome.reportKey == key }
        return unacknowledged.count < before
    }

    /// Empties both lists: returns the reports never sent and how many sent ones go unconfirmed.
    mutating func drain() -> (unsent: [WorkOutcome], unconfirmed: Int) {
        defer { outbox.removeAll(); unacknowledged.removeAll() }
        return (outbox.map(\.outcome), unacknowledged.count)
    }
}
