import Foundation
import PipelineMessaging

/// The ledger commands (`submit`, `status`, `cancel`, `retry`) on an open ledger: the one code
/// path both for a running coordinator answering CONTROL and for the command line when no
/// coordinator holds the ledger (it then opens the file itself, under `LedgerLock`).
public enum LedgerControl {
    public static func perform(_ r: ControlRequest, on ledger: Ledger) -> ControlReply {
        var reply = ControlReply(requestId: r.requestId)
        do {
            switch r.operation {
            case .submit:
                guard let kind = r.kind, let spec = r.spec else {
                    throw JobError.badSpec(kind: r.kind ?? "?", reason: "submit without a kind and a spec")
                }
                let (job, resumed) = try JobSubmission.submit(ledger: ledger, kind: kind, spec: Data(spec.utf8),
                                                              maxAttempts: r.maxAttempts ?? 3,
                                                              leaseSeconds: r.leaseSeconds ?? 600, resume: !(r.fresh ?? false))
                reply.jobId = job
                reply.resumed = resumed
                reply.output = "\(job)"
                if resumed { reply.notice = "same job already in the ledger: \(job)" }
            case .status:
                let report = try JobStatusReport.load(ledger: ledger, jobId: r.jobId, maxItemErrors: r.maxItemErrors ?? 20)
                reply.output = r.json == true ? String(decoding: try report.json(), as: UTF8.self) : report.render()
            case .cancel:
                let job = try jobId(r)
                try ledger.cancel(job)
                reply.output = "job \(job) cancelled"
            case .retry:
                let job = try jobId(r)
                reply.output = "job \(job): \(try ledger.retry(job)) failed shard(s) back to pending"
            }
        } catch {
            reply.error = "\(error)"
        }
        return reply
    }

    private static func jobId(_ r: ControlRequest) throws -> Int64 {
        guard let j = r.jobId else { throw JobError.badSpec(kind: r.operation.rawValue, reason: "no job id") }
        return j
    }
}

extension CoordinatorService {
    /// Answers one CONTROL on the coordinator's own ledger (between two ledger batches).
    func answer(_ request: ControlRequest, from peer: PeerID) {
        let reply = LedgerControl.perform(request, on: core.ledger)
        let outcome = reply.error.map { "error: \($0)" } ?? "ok"
        logger.info("control \(request.operation.rawValue)\(request.jobId.map { " job \($0)" } ?? "") from peer \(peer): \(outcome)")
        do { try endpoint.send(.controlReply(reply), to: peer) } catch {
            logger.warning("CONTROL_REPLY to peer \(peer) not sent: \(error)")
        }
    }
}

extension CoordinatorService {
    /// After a stop signal (`serve --drain-seconds`): keeps the loop going while a connected
    /// worker still holds a lease, up to `seconds`, so workers stopped at the same time
    /// (Slurm's requeue and preemption signal every process of the job at once) get their
    /// abandoned shards recorded, released without using up an attempt, before the
    /// coordinator exits. Returns true when no connected worker held a lease at the end.
    public func drain(seconds: Double) throws -> Bool {
        let deadline = Self.now() + seconds
        var drained = false
        try run {
            let connected = Set(endpoint.connectedPeers.compactMap { core.workerId(of: $0) })
            drained = try core.ledger.leaseHolders().isDisjoint(with: connected)
            return drained || Self.now() >= deadline
        }
        return drained
    }
}
