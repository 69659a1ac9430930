import Foundation
import PipelineFiles
import PipelineMessaging
import Logging

/// Ending jobs whose shards have all ended. A job's finalize step (merging statistics,
/// writing the ADM sample batch, a manifest) reads and writes whole files, so with
/// `offLoop` set it runs on the finalize lane and the job ends when its result is back on
/// the loop; the job stays `running` meanwhile.
extension CoordinatorCore {
    private struct Finalized {
        var swept: Int
        var outputs: Result<[FileDigest], Error>
    }

    /// Ends every running job with no open shard: finalize + done, or partially failed.
    public func settleJobs() throws {
        for job in try ledger.settledJobs() where !finalizing.contains(job.jobId) {
            guard job.failedShards.isEmpty else {
                let summary = JobSummary.partial(job)
                try ledger.finishJob(job.jobId, state: .partiallyFailed, summary: summary)
                logger.warning("job \(job.jobId) partially failed: \(summary)")
                continue
            }
            let shardOutputs = try ledger.outputs(jobId: job.jobId)
            let (kindName, spec, dir) = (job.kind, job.spec, job.outputDir)
            let work = { @Sendable () -> Finalized in
                let swept = AtomicFileWriter.removeTemporaries(under: dir)
                do {
                    let kind = try JobKinds.named(kindName)
                    return Finalized(swept: swept, outputs: .success(try kind.finalize(spec: spec, outputDir: dir, shardOutputs: shardOutputs)))
                } catch {
                    return Finalized(swept: swept, outputs: .failure(error))
                }
            }
            let jobId = job.jobId
            if let offLoop {
                finalizing.insert(jobId)
                offLoop.submit(.finalize, work) { [weak self] result in
                    guard let self else { return }
                    self.finalizing.remove(jobId)
                    try self.end(jobId, result)
                }
            } else {
                try end(jobId, work())
            }
        }
    }

    private func end(_ jobId: Int64, _ r: Finalized) throws {
        if r.swept > 0 { logger.info("job \(jobId): removed \(r.swept) temporary file(s) left by killed workers") }
        switch r.outputs {
        case .success(let final):
            if try ledger.finishJob(jobId, state: .done, summary: JobSummary.done(ledger: ledger, jobId: jobId), finalOutputs: final) {
                logger.info("job \(jobId) done")
            } else {
                logger.notice("job \(jobId) changed while it was being finalized (retried or cancelled): not ended now")
            }
        case .failure(let error):
            try ledger.finishJob(jobId, state: .failed, summary: "finalize failed: \(error)")
            logger.warning("job \(jobId) failed at finalize: \(error)")
        }
    }
}
