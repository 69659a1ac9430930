import Foundation
import Logging

/// A `WorkerEndpoint`'s assignments and reports: `credits` handler threads take queued
/// assignments; their outcomes wait in `reports` until the coordinator acknowledges them.
/// Everything here holds `state` while it touches `queued`, `inFlight` and `reports`.
extension WorkerEndpoint {
    /// Unacknowledged reports a graceful stop still waits for (caller holds `state`).
    func awaitingAcks(connected: Bool) -> Bool {
        guard !reports.unacknowledged.isEmpty, connected else { return false }
        guard let since = stopRequestedAt else { return true }
        return monotonicNow() - since < ackWaitOnStop
    }

    /// An ACK: the coordinator has dealt with the report for good, so it is forgotten.
    func acknowledged(_ k: Acknowledgement) {
        let key = k.reportKey
        state.lock()
        let known = reports.acknowledge(key)
        state.unlock()
        switch k.verdict {
        case .recorded: break
        case .duplicate: logger.log(level: .info, "the coordinator already had the report for \(key) (a re-send)")
        case .stale: logger.log(level: .warning, "the coordinator ignored the report for \(key): no longer its current lease")
        case .rejected: logger.log(level: .warning, "the coordinator rejected the outputs reported for \(key)")
        }
        if !known { logger.log(level: .debug, "ACK for \(key), which was not waiting for one") }
        wake.wake()
    }

    func accept(_ a: Assignment) {
        state.lock()
        if stopMode != nil {
            reports.add(.failed(ShardFailure.stopping(a, reason: "not started: worker stopping")))
            state.unlock()
            wake.wake()
            return
        }
        if inFlight.count + queued.count >= credits {
            logger.log(level: .warning, "ASSIGN job \(a.jobId) shard \(a.shardId) beyond the \(credits) credit(s) granted: queued")
        }
        queued.append(a)
        state.signal()
        state.unlock()
    }

    /// Ends the pool; hands unsent outcomes and a FAILED (retryable) for every
    /// running or queued assignment to `report`.
    func abandonAll(report: ((WorkOutcome) -> Void)?) {
        state.lock()
        let left = inFlight + queued
        queued.removeAll()
        inFlight.removeAll()
        // Reports waiting in the outbox go now (once); those already sent on this connection
        // are not repeated: nothing would be left to wait for their ACKs.
        let (unsent, unconfirmed) = reports.drain()
        poolShutdown = true
        state.broadcast()
        state.unlock()
        if unconfirmed > 0 { logger.log(level: .info, "leaving with \(unconfirmed) report(s) not acknowledged by the coordinator") }
        guard let report else { return }
        for outcome in unsent { report(outcome) }
        for a in left {
            report(.failed(ShardFailure.stopping(a, reason: "abandoned: worker stopping")))
        }
    }

    func startPool(_ handler: @escaping @Sendable (Assignment) -> WorkOutcome) {
        for i in 0..<credits {
            let t = Thread { [self] in poolLoop(handler) }
            t.name = "dit-work-\(i)"
            t.start()
        }
    }

    private func poolLoop(_ handler: (Assignment) -> WorkOutcome) {
        while true {
            state.lock()
            while queued.isEmpty && !poolShutdown { state.wait() }
            if poolShutdown {
                state.unlock()
                return
            }
            let a = queued.removeFirst()
            inFlight.append(a)
            state.unlock()
            let outcome = handler(a)
            state.lock()
            let index = inFlight.firstIndex { $0.jobId == a.jobId && $0.shardId == a.shardId && $0.attempt == a.attempt }
            if let index {
                inFlight.remove(at: index)
                reports.add(outcome)
            }
            state.unlock()
            wake.wake()
        }
    }
}
