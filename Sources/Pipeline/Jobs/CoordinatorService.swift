import Foundation
import PipelineFiles
import PipelineMessaging
import Logging

/// The coordinator loop: DITP/1 messages from `CoordinatorEndpoint` into `CoordinatorCore`,
/// assignments and report ACKs back out (after the ledger commit that decided them), and
/// periodic lease expiry, job settlement and dead-worker release. `dismissWorkers`
/// (CoordinatorShutdown.swift) is the way out.
public final class CoordinatorService {
    public let endpoint: CoordinatorEndpoint
    public let core: CoordinatorCore<PeerID>
    /// How often leases are expired and settled jobs finalized (s).
    public var tickInterval = 0.1
    /// After a (re)start, workers get this long to reconnect before the leases they held
    /// in the ledger are released (s).
    public var reconnectGrace: Double
    /// On the way out, how long `dismissWorkers` waits for a worker to confirm its DISCONNECT,
    /// or for a worker whose connection was lost lately to come back and hear it (s).
    public var dismissGrace: Double
    let logger: Logger
    /// Workers whose connection expired or dropped (worker id -> when, and that connection),
    /// until they say READY again or leave with DISCONNECT: `dismissWorkers` waits a while
    /// for those lost lately.
    var lostWorkers: [String: (at: Double, peer: PeerID)] = [:]

    public init(ledger: Ledger, endpoint: CoordinatorEndpoint, logger: Logger = Logger(label: "dit.coordinator")) {
        self.endpoint = endpoint
        self.core = CoordinatorCore(ledger: ledger, logger: logger)
        self.logger = logger
        reconnectGrace = 2 * Double(endpoint.liveness) * endpoint.heartbeatInterval + 2
        // A worker that lost its connection comes back after its back-off (1 s at first)
        // plus its liveness window: allow for both, with room for a loaded machine.
        dismissGrace = 2 * Double(endpoint.liveness) * endpoint.heartbeatInterval + 4
    }

    /// Runs until `shouldStop()` (checked every tick) returns true.
    public func run(shouldStop: () throws -> Bool) throws {
        let start = Self.now()
        var nextTick = start
        var graceOver = false
        while true {
            let now = Self.now()
            if now >= nextTick {
                for peer in endpoint.expiredPeers() {
                    noteLost(peer)
                    try deliver(core.handle(.gone(peer, reason: "silent for \(endpoint.liveness) heartbeats")))
                }
                try deliver(core.tick())
                if !graceOver && now - start >= reconnectGrace {
                    graceOver = true
                    try deliver(core.releaseAbsentWorkers())
                }
                if try shouldStop() { return }
                nextTick = now + tickInterval
            }
            guard let first = try endpoint.receive(timeout: max(0, nextTick - Self.now())) else { continue }
            // Drain what else has arrived and apply it all in one ledger transaction (group
            // commit); the resulting ASSIGNs leave only after that commit.
            var inputs: [CoordinatorInput<PeerID>] = []
            var next: (peer: PeerID, message: WireMessage)? = first
            while let (peer, message) = next {
                if let input = Self.input(peer: peer, message: message) {
                    try core.prepare(input)
                    inputs.append(input)
                    switch input {
                    case .hello(_, let id, _, _, _): lostWorkers[id] = nil
                    case .gone(let p, _): if let id = core.workerId(of: p) { lostWorkers[id] = nil }   // left on purpose
                    default: break
                    }
                } else {
                    logger.warning("ignored \(message.command) from peer \(peer): workers never send it")
                }
                next = inputs.count < maxBatch ? try endpoint.receive(timeout: 0) : nil
            }
            _ = core.takeReportAcks()
            let grants = try core.ledger.batch { try inputs.flatMap { try core.handle($0) } }
            acknowledge(core.takeReportAcks())
            try deliver(grants)
        }
    }

    /// Sends the ACKs of reports the ledger now has (call only after their transaction
    /// committed). Workers of DITP/1 revision 1 get none. A lost ACK costs a re-send.
    func acknowledge(_ acks: [ReportAck<PeerID>]) {
        for a in acks where endpoint.hello(of: a.peer)?.expectsAcknowledgements ?? false {
            do {
                try endpoint.send(.ack(Acknowledgement(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt,
                                                       verdict: a.verdict)), to: a.peer)
            } catch {
                logger.warning("ACK for job \(a.jobId) shard \(a.shardId) attempt \(a.attempt) to peer \(a.peer) not sent: \(error)")
            }
        }
    }

    /// A worker connection that ended without DISCONNECT: remembered for `dismissWorkers`.
    func noteLost(_ peer: PeerID) {
        if let id = core.workerId(of: peer) { lostWorkers[id] = (Self.now(), peer) }
    }

    /// Most messages applied in one ledger transaction.
    public var maxBatch = 256

    /// Sends ASSIGNs (their leases are already in the ledger). An unreachable worker is
    /// treated as gone, so its leases go back to pending at once.
    private let encoder = JSONEncoder()

    func deliver(_ grants: [(PeerID, LeaseGrant)]) throws {
        var queue = grants[...]
        while let (peer, g) = queue.popFirst() {
            do {
                let payload = try encoder.encode(g.task)
                try endpoint.send(.assign(Assignment(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt,
                                                     kind: g.task.kind, payload: payload)), to: peer)
            } catch {
                logger.warning("ASSIGN of job \(g.jobId) shard \(g.shardId) to peer \(peer) not sent: \(error)")
                noteLost(peer)
                queue += try core.handle(.gone(peer, reason: "unreachable"))
            }
        }
    }

    static func input(peer: PeerID, message: WireMessage) -> CoordinatorInput<PeerID>? {
        switch message {
        case .ready(let h):
            return .hello(peer, workerId: h.workerId, host: h.hostname, pid: Int(h.pid), threads: h.threads)
        case .request(let credits):
            return .request(peer, credits: credits)
        case .result(let r):
            return .result(peer, ShardCompletion(
                jobId: r.jobId, shardId: r.shardId, attempt: r.attempt,
                outputs: r.outputs.map { FileDigest(path: $0.path, size: $0.size, sha256: $0.sha256) },
                itemErrors: r.itemErrors.map { ItemFailure(item: $0.item, path: $0.path, reason: $0.reason) },
                elapsed: r.metrics["elapsed"] ?? 0, metrics: r.metrics))
        case .failed(let f):
            return .failed(peer, jobId: f.jobId, shardId: f.shardId, attempt: f.attempt, reason: f.reason, retryable: f.retryable)
        case .disconnect:
            return .gone(peer, reason: "disconnected")
        case .assign, .heartbeat, .ack:
            return nil
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

extension WorkOutcome {
    /// The wire form of a shard run's outcome.
    public init(_ outcome: ShardRunner.Outcome, for a: Assignment) {
        switch outcome {
        case let .done(report, elapsed):
            var metrics = report.metrics
            metrics["elapsed"] = elapsed
            self = .result(ShardResult(
                jobId: a.jobId, shardId: a.shardId, attempt: a.attempt,
                outputs: report.outputs.map { OutputRecord(path: $0.path, size: $0.size, sha256: $0.sha256) },
                itemErrors: report.itemErrors.map { ItemError(item: $0.item, path: $0.path, reason: $0.reason) },
                metrics: metrics))
        case let .failed(reason, retryable):
            self = .failed(ShardFailure(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, reason: reason,
                                        retryable: retryable))
        }
    }
}
