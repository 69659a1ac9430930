import Foundation
import PipelineFiles
import PipelineMessaging
import Logging
import Metrics

/// What a worker told the coordinator, in the coordinator's terms (the messaging layer's
/// messages map onto these one to one; see `CoordinatorService`).
public enum CoordinatorInput<Peer: Hashable> {
    /// READY. `credential`: what the messaging layer bound the worker id to (nil: not known);
    /// `holding`: the leases the worker says it holds (nil: it does not say, DITP/1 revision < 3).
    case hello(Peer, workerId: String, host: String, pid: Int, threads: Int, credential: String? = nil,
               holding: Set<LeaseRef>? = nil)
    case request(Peer, credits: Int)
    case result(Peer, ShardCompletion)
    case failed(Peer, jobId: Int64, shardId: Int64, attempt: Int, reason: String, retryable: Bool)
    /// The worker gave the shard up because it was told to stop (SIGTERM: preemption, requeue,
    /// scale-down): the lease goes back without using up an attempt, as Slurm does not count
    /// a preempted job's requeues against it.
    case abandoned(Peer, jobId: Int64, shardId: Int64, attempt: Int, reason: String)
    /// The worker said DISCONNECT, or the messaging layer declared it dead.
    case gone(Peer, reason: String)
    /// The coordinator dismissed the worker (its leases go back without using an attempt).
    case dismissed(Peer)
}

/// What the coordinator made of one RESULT/FAILED: the ACK owed to its sender once the
/// ledger transaction that decided it has committed (`CoordinatorCore.takeReportAcks`).
public struct ReportAck<Peer: Hashable> {
    public var peer: Peer
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var verdict: AckVerdict
}

/// The coordinator's state machine over the ledger, without sockets: it takes inputs,
/// writes transitions to the ledger and returns the assignments to send (each already
/// leased in the ledger). `tick()` expires leases and ends settled jobs.
///
/// Reports are idempotent: a RESULT or FAILED that arrives again (a worker re-sends what it
/// has no ACK for) finds its attempt already ended and changes nothing; every report, new,
/// repeated or stale, leaves a `ReportAck` so the worker can forget it (a RESULT whose files
/// are being hashed off the loop leaves its ACK when the verdict is in).
///
/// With `offLoop` set (the service), hashing a RESULT's files and a job's finalize step run
/// on other threads and come back through `applyFinishedWork`; without it they run inline.
/// The shard and attempt states it moves through are drawn in LedgerStates.swift.
public final class CoordinatorCore<Peer: Hashable & CustomStringConvertible> {
    public let ledger: Ledger
    public var logger: Logger
    /// Hashes reported outputs against the shared output folder (size and SHA-256). The
    /// names are always checked against the shard's expected files.
    public var verifyOutputs = true
    /// Where hashing and finalize steps run (nil: inline, on the caller's thread).
    public var offLoop: OffLoopWork?

    struct PeerState { var workerId: String; var credits: Int }
    private(set) var peers: [Peer: PeerState] = [:]
    private var peerOfWorker: [String: Peer] = [:]
    /// Counters for `status`/bench.
    public internal(set) var dispatched = 0
    public internal(set) var accepted = 0
    public internal(set) var ignored = 0
    /// Reports that arrived again after their attempt was recorded (nothing counted twice).
    public internal(set) var duplicates = 0
    var idle = false   // no pending shard at the last look; cleared by any ledger change
    struct AttemptKey: Hashable { var job: Int64; var shard: Int64; var attempt: Int }
    /// RESULTs whose files are being hashed off the loop.
    var verifying: Set<AttemptKey> = []
    /// Jobs whose finalize step is running off the loop.
    var finalizing: Set<Int64> = []
    /// ACKs owed for the reports handled since the last `takeReportAcks`.
    var reportAcks: [ReportAck<Peer>] = []
    private let dispatchCounters = PerKind(counter: .dispatches)
    let shardDurations = PerKind(timer: .shardDuration)
    private let workersGauge = Gauge(label: LoopMetric.workersConnected.rawValue)

    public init(ledger: Ledger, logger: Logger = .silent) {
        self.ledger = ledger
        self.logger = logger
    }

    public var connectedWorkers: Int { peers.count }

    /// The worker id a connected peer said READY with.
    public func workerId(of peer: Peer) -> String? { peers[peer]?.workerId }

    /// The ACKs owed for the reports handled so far, oldest first; send them only after the
    /// ledger transaction that handled the reports has committed.
    public func takeReportAcks() -> [ReportAck<Peer>] {
        defer { reportAcks.removeAll() }
        return reportAcks
    }

    /// Handles one input; returns the assignments to send now.
    public func handle(_ input: CoordinatorInput<Peer>) throws -> [(Peer, LeaseGrant)] {
        switch input {
        case let .hello(peer, workerId, host, pid, threads, credential, holding):
            if let old = peerOfWorker[workerId], old != peer { peers[old] = nil }
            // A (re)connecting worker starts with no credit; it asks with REQUEST.
            peers[peer] = PeerState(workerId: workerId, credits: 0)
            peerOfWorker[workerId] = peer
            workersGauge.record(peers.count)
            let previous = try ledger.workerCredential(id: workerId)
            if let previous, let credential, previous != credential {
                // Another process under this id (the messaging layer lets one take an id over only
                // once the old connection is gone): whatever the old one held is lost with it.
                let released = try ledger.releaseWorker(workerId, reason: "was replaced by a new process with the same worker id")
                if !released.isEmpty { idle = false }
                logger.warning("worker \(workerId) is a new process; \(released.count) lease(s) of the previous one released")
            }
            try ledger.workerSeen(id: workerId, host: host, pid: pid, threads: threads, credential: credential)
            if let holding {
                // Leases it does not hold had their ASSIGN sent to a connection it had left
                // (a stall, a restart): back to pending now, without using an attempt.
                let released = try ledger.releaseLeases(of: workerId, reason: "never received its ASSIGN (sent to a connection it had left)",
                                                        countsAsAttempt: false) { job, shard, attempt in
                    !holding.contains(LeaseRef(jobId: job, shardId: shard, attempt: attempt))
                }
                if !released.isEmpty {
                    idle = false
                    logger.warning("worker \(workerId) reconnected without \(released.count) lease(s) sent to its old connection: released")
                }
            }
            return try dispatch()
        case let .request(peer, credits):
            guard credits > 0, credits <= 1024 else { logger.warning("ignored REQUEST with \(credits) credits from \(peer)"); return [] }
            guard let w = peers[peer] else { logger.warning("ignored REQUEST from peer \(peer), which has not said READY"); return [] }
            peers[peer]?.credits = min(w.credits + credits, 1024)
            return try dispatch()
        case let .result(peer, c):
            if let verdict = try receive(c, from: peer) {
                reportAcks.append(ReportAck(peer: peer, jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, verdict: verdict))
            }
            return try dispatch()
        case let .failed(peer, job, shard, attempt, reason, retryable):
            return try recordFailure(peer, job: job, shard: shard, attempt: attempt, reason: reason, retryable: retryable,
                                     abandoned: false)
        case let .abandoned(peer, job, shard, attempt, reason):
            return try recordFailure(peer, job: job, shard: shard, attempt: attempt, reason: reason, retryable: true,
                                     abandoned: true)
        case .gone(let peer, _), .dismissed(let peer):
            guard let w = peers.removeValue(forKey: peer) else { return [] }
            if peerOfWorker[w.workerId] == peer { peerOfWorker[w.workerId] = nil }
            workersGauge.record(peers.count)
            var reason = "dismissed", counts = false
            if case let .gone(_, why) = input { reason = why; counts = true }
            let released = try ledger.releaseWorker(w.workerId, reason: reason, countsAsAttempt: counts)
            logger.info("worker \(w.workerId) \(reason); \(released.count) lease(s) released")
            if !released.isEmpty { idle = false }
            return try dispatch()
        }
    }

    /// A FAILED (or an abandoned shard): recorded against the current lease, its ACK queued.
    private func recordFailure(_ peer: Peer, job: Int64, shard: Int64, attempt: Int, reason: String, retryable: Bool,
                               abandoned: Bool) throws -> [(Peer, LeaseGrant)] {
        let worker = peers[peer]?.workerId ?? peer.description
        var verdict = AckVerdict.recorded
        switch try ledger.fail(jobId: job, shardId: shard, attempt: attempt, workerId: worker, reason: reason,
                               retryable: retryable, abandoned: abandoned) {
        case .stale(let why):
            if try ledger.attemptOutcome(jobId: job, shardId: shard, attempt: attempt) == (abandoned ? .released : .failed) {
                verdict = .duplicate
                duplicates += 1
                logger.info("FAILED for job \(job) shard \(shard) attempt \(attempt) from \(worker) again: already recorded")
            } else {
                verdict = .stale
                ignored += 1
                logger.warning("ignored FAILED: \(why)")
            }
        case .shardFailed: logger.warning("job \(job) shard \(shard) failed for good: \(reason)")
        default:
            let what = abandoned ? "abandoned" : "failed", then = abandoned ? "released; no attempt used up" : "will retry"
            logger.warning("job \(job) shard \(shard) attempt \(attempt) \(what) on \(worker) (\(then)): \(reason)")
        }
        reportAcks.append(ReportAck(peer: peer, jobId: job, shardId: shard, attempt: attempt, verdict: verdict))
        idle = false
        return try dispatch()
    }

    /// `handle` with the input's ledger writes isolated (a savepoint inside a `batch`): when
    /// they fail (a constraint, SQLITE_BUSY, a full disk) the input alone is undone and
    /// logged, and no ACK leaves for it (a worker re-sends an unacknowledged report).
    public func handleContained(_ input: CoordinatorInput<Peer>) -> [(Peer, LeaseGrant)] {
        let mark = reportAcks.count
        do {
            return try ledger.savepoint { try handle(input) }
        } catch {
            reportAcks.removeSubrange(mark...)
            idle = false
            logger.error("\(input) not recorded (the coordinator serves on): \(error)")
            return []
        }
    }

    /// Grants whose transaction did not commit: their leases are not in the ledger, so the
    /// credits they used go back to their workers.
    public func revoke(_ grants: [(Peer, LeaseGrant)]) {
        for (peer, _) in grants where peers[peer] != nil {
            peers[peer]?.credits += 1
            dispatched -= 1
        }
        idle = false
    }

    /// True while `peer` is a connected worker here.
    public func isConnected(_ peer: Peer) -> Bool { peers[peer] != nil }

    /// A grant that cannot be delivered (its connection was replaced or dropped meanwhile):
    /// the lease goes back to pending at once, without using an attempt.
    public func undeliverable(_ grant: LeaseGrant, reason: String) throws {
        let released = try ledger.releaseLeases(of: grant.workerId, reason: reason, countsAsAttempt: false) { job, shard, attempt in
            job == grant.jobId && shard == grant.shardId && attempt == grant.attempt
        }
        if !released.isEmpty { idle = false }
    }

    /// Leases shards to workers with credit, one ledger transaction each. On a ledger error
    /// the grants made so far are revoked (credits back) and the error rethrown.
    public func dispatch() throws -> [(Peer, LeaseGrant)] {
        var out: [(Peer, LeaseGrant)] = []
        if idle { return out }
        do {
            for peer in Array(peers.keys) {
                while let state = peers[peer], state.credits > 0 {
                    guard let grant = try ledger.leaseNext(workerId: state.workerId) else {
                        idle = true
                        return out
                    }
                    peers[peer]?.credits -= 1
                    dispatched += 1
                    dispatchCounters[grant.task.kind].increment()
                    out.append((peer, grant))
                }
            }
        } catch {
            revoke(out)
            throw error
        }
        return out
    }

    /// Periodic work: expire leases, end settled jobs (finalize once). Returns new assignments.
    public func tick() throws -> [(Peer, LeaseGrant)] {
        for e in try ledger.expireLeases() {
            logger.warning("lease of job \(e.jobId) shard \(e.shardId) attempt \(e.attempt) on \(e.workerId) expired\(e.shardFailed ? "; shard failed (max attempts)" : "; back to pending")")
        }
        try settleJobs()
        idle = false   // other processes (submit, retry) may have added work
        return try dispatch()
    }

    /// Applies the results of work finished off the loop (verdicts, finalize steps), each
    /// contained like an input. Returns new assignments.
    public func applyFinishedWork() throws -> [(Peer, LeaseGrant)] {
        guard let offLoop else { return [] }
        for apply in offLoop.takeFinished() {
            let mark = reportAcks.count
            do { try ledger.savepoint { try apply() } } catch {
                reportAcks.removeSubrange(mark...)
                logger.error("applying work finished off the loop failed (the coordinator serves on): \(error)")
            }
            idle = false
        }
        return try dispatch()
    }

    /// Releases the leases of workers that are not connected (after a coordinator restart:
    /// workers that did not come back within the grace period). Returns new assignments.
    public func releaseAbsentWorkers() throws -> [(Peer, LeaseGrant)] {
        let present = Set(peers.values.map(\.workerId))
        for worker in try ledger.leaseHolders().subtracting(present) {
            let released = try ledger.releaseWorker(worker, reason: "did not reconnect after the coordinator restarted")
            logger.warning("worker \(worker) absent; \(released.count) lease(s) released")
            idle = false
        }
        return try dispatch()
    }
}

extension CoordinatorInput: CustomStringConvertible where Peer: CustomStringConvertible {
    /// One line naming the input (for log lines).
    public var description: String {
        switch self {
        case let .hello(peer, workerId, _, _, _, _, _): return "READY of worker \(workerId) from peer \(peer)"
        case let .request(peer, credits): return "REQUEST(\(credits)) from peer \(peer)"
        case let .result(peer, c): return "RESULT for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) from peer \(peer)"
        case let .failed(peer, job, shard, attempt, _, _): return "FAILED for job \(job) shard \(shard) attempt \(attempt) from peer \(peer)"
        case let .abandoned(peer, job, shard, attempt, _):
            return "FAILED (abandoned) for job \(job) shard \(shard) attempt \(attempt) from peer \(peer)"
        case let .gone(peer, reason): return "loss of peer \(peer) (\(reason))"
        case let .dismissed(peer): return "dismissal of peer \(peer)"
        }
    }
}

/// The one-paragraph summaries recorded with a job's end.
enum JobSummary {
    static func partial(_ job: SettledJob) -> String {
        let list = job.failedShards.prefix(20).map { "shard \($0.index): \($0.reason)" }.joined(separator: "; ")
        let more = job.failedShards.count > 20 ? "; and \(job.failedShards.count - 20) more" : ""
        return "\(job.failedShards.count) shard(s) failed after all attempts (run `retry \(job.jobId)`): \(list)\(more)"
    }

    static func done(ledger: Ledger, jobId: Int64) -> String {
        let errors = (try? ledger.itemErrors(jobId: jobId).count) ?? 0
        return errors == 0 ? "all shards done" : "all shards done; \(errors) item error(s) recorded"
    }
}
