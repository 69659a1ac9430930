import Foundation
import PipelineFiles
import PipelineMessaging
import Logging

/// The coordinator loop: DITP/1 messages from `CoordinatorEndpoint` into `CoordinatorCore`,
/// assignments and report ACKs back out (after the ledger commit that decided them), and
/// periodic lease expiry, job settlement and dead-worker release. `dismissWorkers`
/// (CoordinatorShutdown.swift) is the way out.
///
/// Nothing one message does ends `serve`: each message's ledger writes are a savepoint of the
/// batch, and a message that fails (a constraint, SQLITE_BUSY, a full disk) is logged and
/// dropped alone (a worker re-sends an unacknowledged report); a batch that cannot commit is
/// logged and dropped whole, and so is a failing tick. Hashing RESULT files and finalize
/// steps run off the loop (`OffLoopWork`), so heartbeats never wait for them.
public final class CoordinatorService {
    public let endpoint: CoordinatorEndpoint
    public let core: CoordinatorCore<PeerID>
    /// How often leases are expired and settled jobs finalized (s).
    public var tickInterval = 0.1
    /// After a (re)start, workers get this long to reconnect before the leases they held
    /// in the ledger are released (s): longer than a worker's largest back-off plus its
    /// liveness window, so a slow returner keeps its leases and its finished work counts.
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
        let offLoop = OffLoopWork()
        offLoop.onFinished = endpoint.interrupter
        core.offLoop = offLoop
        reconnectGrace = WorkerEndpoint.defaultReconnectMax + 2 * Double(endpoint.liveness) * endpoint.heartbeatInterval + 2
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
                    contained("releasing the leases of a silent worker") {
                        deliver(try core.handle(.gone(peer, reason: "silent for \(endpoint.liveness) heartbeats")))
                    }
                }
                apply(1, "periodic tick(s) (lease expiry, job settlement)") { try core.tick() }
                if !graceOver && now - start >= reconnectGrace {
                    graceOver = true
                    contained("releasing the leases of absent workers") { deliver(try core.releaseAbsentWorkers()) }
                }
                if try shouldStop() { return }
                nextTick = now + tickInterval
            }
            if core.offLoop?.outstanding ?? 0 > 0 { applyFinishedWork() }
            if !deferred.isEmpty {
                let again = deferred
                deferred = []
                applyInputs(again)
            }
            guard let first = try endpoint.receive(timeout: max(0, nextTick - Self.now())) else { continue }
            // Drain what else has arrived and apply it all in one ledger transaction (group
            // commit); the resulting ASSIGNs leave only after that commit.
            var inputs: [CoordinatorInput<PeerID>] = []
            var next: (peer: PeerID, message: WireMessage)? = first
            while let (peer, message) = next {
                if case .control(let request) = message {
                    answer(request, from: peer)   // LedgerControl.swift
                } else if let input = input(peer: peer, message: message) {
                    inputs.append(input)
                    switch input {
                    case .hello(_, let id, _, _, _, _, _): lostWorkers[id] = nil
                    case .gone(let p, _): if let id = core.workerId(of: p) { lostWorkers[id] = nil }   // left on purpose
                    default: break
                    }
                } else {
                    logger.warning("ignored \(message.command) from peer \(peer): workers never send it")
                }
                next = inputs.count < maxBatch ? try endpoint.receive(timeout: 0) : nil
            }
            applyInputs(inputs)
        }
    }

    /// Messages whose transaction could not even begin (SQLITE_BUSY past the busy timeout):
    /// nothing of them was applied, so they are applied again, oldest first, on the next turn
    /// (READY, REQUEST and DISCONNECT are never re-sent by a worker).
    var deferred: [CoordinatorInput<PeerID>] = []
    /// Most messages kept for another try.
    public var maxDeferred = 10_000

    func applyInputs(_ inputs: [CoordinatorInput<PeerID>]) {
        guard !apply(inputs.count, "message(s)", { inputs.flatMap { core.handleContained($0) } }) else { return }
        deferred += inputs
        if deferred.count > maxDeferred {
            logger.error("\(deferred.count - maxDeferred) message(s) dropped: the ledger has refused every transaction for a while")
            deferred.removeFirst(deferred.count - maxDeferred)
        }
    }

    /// Runs `body` (which hands inputs to the core) in one ledger transaction, then sends the
    /// ACKs and ASSIGNs it decided. A transaction that fails is logged and nothing is sent (a
    /// worker re-sends its reports): one that failed to commit has its grants' credits given
    /// back; one that could not begin returns false (nothing was applied, `body` never ran).
    @discardableResult
    func apply(_ count: Int, _ what: String, _ body: () throws -> [(PeerID, LeaseGrant)]) -> Bool {
        _ = core.takeReportAcks()
        var grants: [(PeerID, LeaseGrant)] = []
        var began = false
        do {
            try core.ledger.batch {
                began = true
                grants = try body()
            }
        } catch {
            _ = core.takeReportAcks()
            core.revoke(grants)
            logLimited("a ledger transaction of \(count) \(what) failed and was rolled back (the coordinator serves on"
                       + (began ? "; reports come again" : "; tried again") + "): \(error)")
            return began
        }
        acknowledge(core.takeReportAcks())
        deliver(grants)
        return true
    }

    /// Verdicts and finalize steps finished off the loop, applied like messages.
    func applyFinishedWork() {
        apply(1, "result(s) of off-loop work") { try core.applyFinishedWork() }
    }

    /// Runs periodic work whose failure must not end the loop; logs the failure (once per
    /// distinct message every `repeatLogInterval`).
    func contained(_ what: String, _ body: () throws -> Void) {
        do { try body() } catch {
            logLimited("\(what) failed (the coordinator serves on): \(error)")
        }
    }

    /// Logs a failure line, but the same line at most every 10 s (a full disk fails every tick).
    func logLimited(_ line: String) {
        let now = Self.now()
        if line != lastFailure.line || now - lastFailure.at >= 10 {
            logger.error("\(line)")
            lastFailure = (line, now)
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
    /// The last failure `contained` logged, and when.
    var lastFailure: (line: String, at: Double) = ("", 0)

    /// Sends ASSIGNs (their leases are already in the ledger). An unreachable worker is
    /// treated as gone, so its leases go back to pending at once.
    private let encoder = JSONEncoder()

    func deliver(_ grants: [(PeerID, LeaseGrant)]) {
        var queue = grants[...]
        while let (peer, g) = queue.popFirst() {
            guard core.isConnected(peer) else {
                // Its connection was replaced or dropped in the same batch: nobody would run it.
                contained("releasing an undeliverable lease") {
                    try core.undeliverable(g, reason: "had its ASSIGN decided for a connection that is gone")
                    queue += try core.dispatch()
                }
                continue
            }
            do {
                let payload = try encoder.encode(g.task)
                try endpoint.send(.assign(Assignment(jobId: g.jobId, shardId: g.shardId, attempt: g.attempt,
                                                     kind: g.task.kind, payload: payload)), to: peer)
            } catch {
                logger.warning("ASSIGN of job \(g.jobId) shard \(g.shardId) to peer \(peer) not sent: \(error)")
                noteLost(peer)
                contained("releasing the leases of an unreachable worker") {
                    queue += try core.handle(.gone(peer, reason: "unreachable"))
                }
            }
        }
    }

    /// A message in the core's terms, with the credential the endpoint bound its worker to.
    func input(peer: PeerID, message: WireMessage) -> CoordinatorInput<PeerID>? {
        if case .ready(let h) = message {
            return .hello(peer, workerId: h.workerId, host: h.hostname, pid: Int(h.pid), threads: h.threads,
                          credential: endpoint.credential(of: peer)?.value, holding: h.holding.map(Set.init))
        }
        return Self.input(peer: peer, message: message)
    }

    static func input(peer: PeerID, message: WireMessage) -> CoordinatorInput<PeerID>? {
        switch message {
        case .ready(let h):
            return .hello(peer, workerId: h.workerId, host: h.hostname, pid: Int(h.pid), threads: h.threads,
                          holding: h.holding.map(Set.init))
        case .request(let credits):
            return .request(peer, credits: credits)
        case .result(let r):
            return .result(peer, ShardCompletion(
                jobId: r.jobId, shardId: r.shardId, attempt: r.attempt,
                outputs: r.outputs.map { FileDigest(path: $0.path, size: $0.size, sha256: $0.sha256) },
                itemErrors: r.itemErrors.map { ItemFailure(item: $0.item, path: $0.path, reason: $0.reason) },
                elapsed: r.metrics["elapsed"] ?? 0, metrics: r.metrics))
        case .failed(let f) where f.abandoned == true:
            return .abandoned(peer, jobId: f.jobId, shardId: f.shardId, attempt: f.attempt, reason: f.reason)
        case .failed(let f):
            return .failed(peer, jobId: f.jobId, shardId: f.shardId, attempt: f.attempt, reason: f.reason, retryable: f.retryable)
        case .disconnect:
            return .gone(peer, reason: "disconnected")
        case .assign, .heartbeat, .ack, .control, .controlReply:
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
        case let .abandoned(reason):
            self = .failed(.stopping(a, reason: reason))
        }
    }
}
