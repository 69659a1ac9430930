import Foundation
import PipelineFiles
import PipelineMessaging
import Logging

/// How the coordinator takes a RESULT, cheapest check first, so nothing a worker sends can
/// make the loop that sends heartbeats wait:
/// 1. the lease: a RESULT that is not for the sender's current lease is a duplicate or stale,
///    and nothing it names is opened;
/// 2. the names: exactly the files the shard produces (`JobKind.expectedOutputs`), each once,
///    and item errors only for the shard's own items; else the attempt fails (retried) with
///    the reason;
/// 3. the files: opened without following links, regular files only, hashed off the loop
///    (`OutputVerifier.verify` on `OffLoopWork`); the verdict comes back to the loop, which
///    records the shard done (if the lease still holds) or fails the attempt.
extension CoordinatorCore {
    /// Returns the verdict now, or nil when the files are being hashed off the loop (the
    /// verdict and its ACK follow through `applyFinishedWork`).
    func receive(_ reported: ShardCompletion, from peer: Peer) throws -> AckVerdict? {
        let worker = peers[peer]?.workerId ?? peer.description
        let (c, dropped) = reported.sanitized()
        if !dropped.isEmpty {
            logger.warning("RESULT for job \(c.jobId) shard \(c.shardId) from \(worker): non-finite metric(s) dropped: \(dropped.joined(separator: ", "))")
        }
        guard let task = try ledger.leasedTask(jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, workerId: worker) else {
            return try notCurrent(c, worker: worker, why: "no current lease for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) held by \(worker)")
        }
        if let problem = namesProblem(c, task: task) { return try reject(c, worker: worker, problem) }
        guard verifyOutputs, !c.outputs.isEmpty else { return try record(c, worker: worker) }
        guard let offLoop else {
            if let problem = OutputVerifier.verify(c.outputs, in: task.outputDir) { return try reject(c, worker: worker, problem) }
            return try record(c, worker: worker)
        }
        let key = AttemptKey(job: c.jobId, shard: c.shardId, attempt: c.attempt)
        guard verifying.insert(key).inserted else {
            logger.info("RESULT for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) from \(worker) again while its files are being verified: the first one is answered")
            return nil
        }
        let outputs = c.outputs, dir = task.outputDir
        offLoop.submit(.verify, { OutputVerifier.verify(outputs, in: dir) }) { [weak self] problem in
            guard let self else { return }
            self.verifying.remove(key)
            let verdict = try problem.map { try self.reject(c, worker: worker, $0) } ?? self.record(c, worker: worker)
            self.reportAcks.append(ReportAck(peer: peer, jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, verdict: verdict))
        }
        return nil
    }

    /// Step 2: the shard's expected files, exactly, and its own items.
    private func namesProblem(_ c: ShardCompletion, task: ShardTask) -> String? {
        let items = task.itemStart..<task.itemEnd
        if let e = c.itemErrors.first(where: { !items.contains($0.item) }) {
            return "item error for item \(e.item), outside the shard's items \(items.lowerBound)..<\(items.upperBound)"
        }
        let expected: Set<String>
        do {
            expected = try JobKinds.named(task.kind).expectedOutputs(of: task, failedItems: Set(c.itemErrors.map(\.item)))
        } catch {
            return "the shard's expected outputs are unknown: \(error)"
        }
        return OutputVerifier.checkNames(c.outputs, expected: expected)
    }

    /// Records a verified RESULT (if its lease still holds).
    private func record(_ c: ShardCompletion, worker: String) throws -> AckVerdict {
        let outcome = try ledger.complete(c, workerId: worker)
        switch outcome {
        case .accepted:
            accepted += 1
            idle = false
            if let kind = try ledger.kind(jobId: c.jobId) {
                shardDurations[kind].recordNanoseconds(Int64((max(c.elapsed, 0) * 1e9).rounded()))
            }
            return .recorded
        case .stale(let why): return try notCurrent(c, worker: worker, why: why)
        default: return .recorded
        }
    }

    /// A RESULT that matched its lease but not its files: the attempt fails (retried).
    private func reject(_ c: ShardCompletion, worker: String, _ problem: String) throws -> AckVerdict {
        idle = false
        let outcome = try ledger.fail(jobId: c.jobId, shardId: c.shardId, attempt: c.attempt, workerId: worker,
                                      reason: "RESULT rejected: \(problem)", retryable: true)
        if case .stale(let why) = outcome { return try notCurrent(c, worker: worker, why: why) }
        logger.warning("rejected RESULT for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) from \(worker): \(problem)")
        return .rejected
    }

    /// Not the current lease: a re-send of a RESULT the ledger already has (the worker had no
    /// ACK for it), or a late one for a lease that has moved on.
    private func notCurrent(_ c: ShardCompletion, worker: String, why: String) throws -> AckVerdict {
        if try ledger.attemptOutcome(jobId: c.jobId, shardId: c.shardId, attempt: c.attempt) == .done {
            duplicates += 1
            logger.info("RESULT for job \(c.jobId) shard \(c.shardId) attempt \(c.attempt) from \(worker) again: already recorded done")
            return .duplicate
        }
        ignored += 1
        logger.warning("ignored RESULT: \(why)")
        return .stale
    }
}

extension ShardCompletion {
    /// The completion with only finite, non-negative-time figures (SQLite stores NaN as NULL,
    /// and JSON has no infinities), and the names of the metrics dropped.
    func sanitized() -> (ShardCompletion, dropped: [String]) {
        var c = self
        let bad = metrics.filter { !$0.value.isFinite }.keys.sorted()
        for k in bad { c.metrics[k] = nil }
        if !elapsed.isFinite || elapsed < 0 { c.elapsed = 0 }
        return (c, bad)
    }
}
