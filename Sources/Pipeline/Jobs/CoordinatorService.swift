import Foundation

/// The coordinator loop: DITP/1 messages from `CoordinatorEndpoint` into `CoordinatorCore`,
/// assignments back out, and periodic lease expiry, job settlement and dead-worker release.
public final class CoordinatorService {
    public let endpoint: CoordinatorEndpoint
    public let core: CoordinatorCore<PeerID>
    /// How often leases are expired and settled jobs finalized (s).
    public var tickInterval = 0.1
    /// After a (re)start, workers get this long to reconnect before the leases they held
    /// in the ledger are released (s).
    public var reconnectGrace: Double
    private let log: (String) -> Void

    public init(ledger: Ledger, endpoint: CoordinatorEndpoint, log: @escaping (String) -> Void) {
        self.endpoint = endpoint
        self.core = CoordinatorCore(ledger: ledger, log: log)
        self.log = log
        reconnectGrace = 2 * Double(endpoint.liveness) * endpoint.heartbeatInterval + 2
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
                } else {
                    log("ignored \(message.command) from peer \(peer): workers never send it")
                }
                next = inputs.count < maxBatch ? try endpoint.receive(timeout: 0) : nil
            }
            let grants = try core.ledger.batch { try inputs.flatMap { try core.handle($0) } }
            try deliver(grants)
        }
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
                log("ASSIGN of job \(g.jobId) shard \(g.shardId) to peer \(peer) not sent: \(error)")
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
                elapsed: r.metrics["elapsed"] ?? 0))
        case .failed(let f):
            return .failed(peer, jobId: f.jobId, shardId: f.shardId, attempt: f.attempt, reason: f.reason, retryable: f.retryable)
        case .disconnect:
            return .gone(peer, reason: "disconnected")
        case .assign, .heartbeat:
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
