import Foundation
import PipelineFiles
import PipelineMessaging
import Logging
import Metrics

/// What a worker told the coordinator, in the coordinator's terms (the messaging layer's
/// messages map onto these one to one; see `CoordinatorService`).
public enum CoordinatorInput<Peer: Hashable> {
    case hello(Peer, workerId: String, host: String, pid: Int, threads: Int)
    case request(Peer, credits: Int)
    case result(Peer, ShardCompletion)
    case failed(Peer, jobId: Int64, shardId: Int64, attempt: Int, reason: String, retryable: Bool)
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
/// repeated or stale, leaves a `ReportAck` so the worker can forget it.
public final class CoordinatorCore<Peer: Hashable & CustomStringConvertible> {
    public let ledger: Ledger
    public var logger: Logger
    /// Verifies reported outputs against the shared output folder (size and SHA-256).
    public var verifyOutputs = true

    struct PeerState { var workerId: String; var credits: Int }
    private var peers: [Peer: PeerState] = [:]
    private var peerOfWorker: [String: Peer] = [:]
    /// Counters for `status`/bench.
    public private(set) var dispatched = 0
    public private(set) var accepted = 0
    public private(set) var ignored = 0
    private var idle = false   // no pending shard at the last look; cleared by any ledger change
    private struct AttemptKey: Hashable { var job: Int64; var shard: Int64; var attempt: Int }
    /// Verdicts of `prepare` (nil: outputs verify), so files are hashed outside the ledger's write lock.
    private var verdicts: [AttemptKey: String?] = [:]
    /// ACKs owed for the reports handled since the last `takeReportAcks`.
    private var reportAcks: [ReportAck<Peer>] = []
    /// Reports that arrived again after their attempt was recorded (nothing counted twice).
    public private(set) var duplicates = 0
    private let dispatchCounters = PerKind(counter: .dispatches)
    private let shardDurations = PerKind(timer: .shardDuration)
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
        case let .hello(peer, workerId, host, pid, threads):
            if let old = peerOfWorker[workerId], old != peer { peers[old] = nil }
            // A (re)connecting worker starts with no credit; it asks with REQUEST.
            peers[peer] = PeerState(workerId: workerId, credits: 0)
            peerOfWorker[workerId] = peer
            workersGauge.record(peers.count)
            try ledger.workerSeen(id: workerId, host: host, pid: pid, threads: threads)
            return []
        case let .request(peer, credits):
            guard credits > 0, credits <= 1024 else { logger.warning("ignored REQUEST with \(credits) credits from \(peer)"); return [] }
            let w = try known(peer)
            peers[peer]?.credits = min(w.credits + credits, 1024)
            return try dispatch()
        case let .result(peer, c):
            let verdict = try accept(c, from: peer)
            reportAcks.append(ReportAck(peer: peer, jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, verdict: verdict))
            return try dispatch()
        case let .failed(peer, job, shard, attempt, reason, retryable):
            let worker = peers[peer]?.workerId ?? peer.description
            var verdict = AckVerdict.recorded
            switch try ledger.fail(jobId: job, shardId: shard, attempt: attempt, workerId: worker, reason: reason,
                                   retryable: retryable) {
            case .stale(let why):
                if try ledger.attemptOutcome(jobId: job, shardId: shard, attempt: attempt) == "failed" {
                    verdict = .duplicate
                    duplicates += 1
                    logger.info("FAILED for job \(job) shard \(shard) attempt \(attempt) from \(worker) again: already recorded")
                } else {
                    verdict = .stale
                    ignored += 1
                    logger.warning("ignored FAILED: \(why)")
                }
            case .shardFailed: logger.warning("job \(job) shard \(shard) failed for good: \(reason)")
            default: logger.warning("job \(job) shard \(shard) attempt \(attempt) failed on \(worker) (will retry): \(reason)")
            }
            reportAcks.append(ReportAck(peer: peer, jobId: job, shardId: shard, attempt: attempt, verdict: verdict))
            idle = false
            return try dispatch()
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

    private func known(_ peer: Peer) throws -> PeerState {
        if let w = peers[peer] { return w }
        // A worker that did not (re)send READY: give it a name so work can still flow.
        let w = PeerState(workerId: "peer-\(peer)", credits: 0)
        peers[peer] = w
        peerOfWorker[w.workerId] = peer
        workersGauge.record(peers.count)
        try ledger.workerSeen(id: w.workerId, host: "?", pid: 0, threads: 1)
        return w
    }

    /// Work an input needs that does not touch the ledger's write lock: hashing a RESULT's
    /// output files. Optional (`handle` verifies itself otherwise); call it before `handle`.
    public func prepare(_ input: CoordinatorInput<Peer>) throws {
        guard case let .result(_, c) = input, verifyOutputs else { return }
        verdicts[AttemptKey(job: c.jobId, shard: c.shardId, attempt: c.attempt)] = try verdict(c)
    }

    private func verdict(_ c: ShardCompletion) throws -> String? {
        guard !c.outputs.isEmpty else { return nil }
        guard let outputDir = try ledger.outputDir(jobId: c.jobId) else { return "unknown job \(c.jobId)" }
        return OutputVerifier.check(c.outputs, in: outputDir)
    }

    private func accept(_ c: ShardCompletion, from peer: Peer) throws -> AckVerdict {
        let worker = peers[peer]?.workerId ?? peer.description
        let key = AttemptKey(job: c.jobId, shard: c.shardId, attempt: c.attempt)
        let problem: String?
        if !verifyOutputs {
            problem = nil
        } else if let cached = verdicts.removeValue(forKey: key) {
            problem = cached
        } else {
            problem = try verdict(c)
        }
        let outcome: ReportOutcome
        if let problem {
            idle = false
            outcome = try ledger.fail(jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, workerId: worker,
                                      reason: problem, retryable: true)
            if case .stale = outcome {} else {
                logger.warning("rejected RESULT for job \(c.jobId) shard \(c.shardId) from \(worker): \(problem)")
                return .rejected
            }
        } else {
            outcome = try ledger.complete(c, workerId: worker)
            if outcome == .accepted {
                accepted += 1
                if let kind = try ledger.kind(jobId: c.jobId) {
                    shardDurations[kind].recordNanoseconds(Int64((max(c.elapsed, 0) * 1e9).rounded()))
                }
                return .recorded
            }
        }
        guard case .stale(let why) = outcome else { return .recorded }
        // Not the current lease: a re-send of a RESULT the ledger already has (the worker had
        // no ACK for it), or a late one for a lease that has moved on.
        if try ledger.attemptOutcome(jobId: c.jobId, shardId: c.shardId, attempt: c.attempt) == "done" {
            duplicates += 1
            logger.info("RESULT for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) from \(worker) again: already recorded done")
            return .duplicate
        }
        ignored += 1
        logger.warning("ignored RESULT: \(why)")
        return .stale
    }

    /// Leases shards to workers with credit, one ledger transaction each.
    public func dispatch() throws -> [(Peer, LeaseGrant)] {
        var out: [(Peer, LeaseGrant)] = []
        if idle { return out }
        for (peer, state) in peers where state.credits > 0 {
            var credits = state.credits
            while credits > 0 {
                guard let grant = try ledger.leaseNext(workerId: state.workerId) else {
                    idle = true
                    peers[peer]?.credits = credits
                    return out
                }
                credits -= 1
                dispatched += 1
                dispatchCounters[grant.task.kind].increment()
                out.append((peer, grant))
            }
            peers[peer]?.credits = credits
        }
        return out
    }

    /// Periodic work: expire leases, end settled jobs (finalize once). Returns new assignments.
    public func tick() throws -> [(Peer, LeaseGrant)] {
        for e in try ledger.expireLeases() {
            logger.warning("""
                lease of job \(e.jobId) shard \(e.shardId) attempt \(e.attempt) on \(e.workerId) expired\
                \(e.shardFailed ? "; shard failed (max attempts)" : "; back to pending")
                """)
        }
        try settleJobs()
        idle = false   // other processes (submit, retry) may have added work
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

    /// Ends every running job with no open shard: finalize + done, or partially failed.
    public func settleJobs() throws {
        for job in try ledger.settledJobs() {
            if job.failedShards.isEmpty {
                let swept = AtomicFileWriter.removeTemporaries(under: job.outputDir)
                if swept > 0 { logger.info("job \(job.jobId): removed \(swept) temporary file(s) left by killed workers") }
                do {
                    let kind = try JobKinds.named(job.kind)
                    let outs = try ledger.outputs(jobId: job.jobId)
                    let final = try kind.finalize(spec: job.spec, outputDir: job.outputDir, shardOutputs: outs)
                    try ledger.finishJob(job.jobId, state: .done, summary: JobSummary.done(ledger: ledger, jobId: job.jobId),
                                         finalOutputs: final)
                    logger.info("job \(job.jobId) done")
                } catch {
                    try ledger.finishJob(job.jobId, state: .failed, summary: "finalize failed: \(error)")
                    logger.warning("job \(job.jobId) failed at finalize: \(error)")
                }
            } else {
                let summary = JobSummary.partial(job)
                try ledger.finishJob(job.jobId, state: .partiallyFailed, summary: summary)
                logger.warning("job \(job.jobId) partially failed: \(summary)")
            }
        }
    }
}

/// Re-verifies reported outputs on the shared output folder.
public enum OutputVerifier {
    /// nil when every file exists with the reported size and SHA-256; else the first problem.
    public static func check(_ outputs: [FileDigest], in outputDir: String) -> String? {
        for o in outputs {
            if o.path.hasPrefix("/") || o.path.split(separator: "/").contains("..") {
                return "output path \(o.path) escapes the output folder"
            }
            let full = outputDir + "/" + o.path
            do {
                let (size, sha) = try SHA256.file(full)
                if size != o.size { return "output \(o.path): size \(size) on disk, \(o.size) reported" }
                if sha != o.sha256 { return "output \(o.path): sha256 on disk differs from the reported one" }
            } catch {
                return "output \(o.path) unreadable: \(error)"
            }
        }
        return nil
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
