import Foundation
import Logging
import PipelineMessaging

/// `dit-coordinator bench`: the coordinator's own cost, measured end to end with real
/// worker processes on loopback.
public enum CoordinatorBench {
    public struct DispatchFigures {
        public var shards: Int
        public var workers: Int
        public var credits: Int
        public var seconds: Double
        /// CPU time of the coordinator process itself (all its threads, ZeroMQ's included) over the run.
        public var coordinatorCPU: Double
        public var dispatchesPerSecond: Double { Double(shards) / seconds }
        public var line: String {
            String(format: """
                dispatch: %d no-op shards, %d workers x %d credits, %.3f s from first lease to job end: %.0f shard dispatches/s
                coordinator CPU: %.3f s = %.1f us per dispatch (%.0f dispatches/s per coordinator core)
                """, shards, workers, credits, seconds, dispatchesPerSecond,
                   coordinatorCPU, coordinatorCPU / Double(shards) * 1e6, Double(shards) / coordinatorCPU)
        }
    }

    /// Runs a `noop` job of `shards` one-item shards through `workers` local workers; the time
    /// is the ledger's, from the first lease to the job's end (worker start-up excluded).
    public static func dispatch(shards: Int, workers: Int, credits: Int, workerExecutable: String,
                                scratch: String, logger: Logger = .silent,
                                ledgerReady: (Ledger) throws -> Void = { _ in }) throws -> DispatchFigures {
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let ledger = try Ledger(path: scratch + "/bench-ledger.sqlite")
        try ledgerReady(ledger)
        let spec = try JobKinds.encode(NoopSpec(outputDir: scratch, items: shards, itemsPerShard: 1))
        let opts = EmbeddedRun.Options(workers: workers, credits: credits, workerExecutable: workerExecutable)
        let cpu0 = processCPUSeconds()
        let (job, state) = try EmbeddedRun.run(ledger: ledger, kind: "noop", spec: spec, options: opts, logger: logger)
        let cpu = processCPUSeconds() - cpu0
        guard state == .done else { throw JobError.ledger("bench job ended \(state.rawValue)") }
        let t = try ledger.jobTimes(job)
        guard let start = t.started, let end = t.finished else { throw JobError.ledger("bench job has no times") }
        return DispatchFigures(shards: shards, workers: workers, credits: credits, seconds: end - start, coordinatorCPU: cpu)
    }

    /// User + system CPU seconds of this process (children excluded).
    static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
    }
}

extension CoordinatorBench {
    public struct SampleFigures {
        public var samples: Int
        public var seconds: Double
        public var modelSeconds: Double
        /// Loading the models (once per worker): reported apart, not counted as either side.
        public var loadSeconds: Double
        public var outsideShare: Double { max(0, 1 - modelSeconds / (seconds - loadSeconds)) }
        public var line: String {
            String(format: """
                sample: %d samples, 1 worker, %.3f s from first lease to job end (finalize included; %.3f s of it loading models), \
                %.3f s in the model: %.2f%% of the wall time (less loading) outside the model
                """, samples, seconds, loadSeconds, modelSeconds, outsideShare * 100)
        }
    }

    /// A small `sample` job on one local worker: the share of its wall time (first lease to
    /// job end, finalize included) not spent in DiT + sampler (+ VAE decode) computation.
    public static func sampleOverhead(spec: SampleSpec, workerExecutable: String, scratch: String, threads: Int,
                                      logger: Logger = .silent) throws -> SampleFigures {
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var s = spec
        s.outputDir = scratch + "/out"
        let ledger = try Ledger(path: scratch + "/bench-ledger.sqlite")
        let opts = EmbeddedRun.Options(workers: 1, threadsPerWorker: threads, workerExecutable: workerExecutable)
        let (job, state) = try EmbeddedRun.run(ledger: ledger, kind: "sample", spec: try JobKinds.encode(s), options: opts, logger: logger)
        guard state == .done else { throw JobError.ledger("bench sample job ended \(state.rawValue)") }
        let t = try ledger.jobTimes(job)
        guard let start = t.started, let end = t.finished else { throw JobError.ledger("bench job has no times") }
        return SampleFigures(samples: s.numSamples, seconds: end - start,
                             modelSeconds: try ledger.doneMetrics(jobId: job)["model_seconds"] ?? 0,
                             loadSeconds: try ledger.doneMetrics(jobId: job)["load_seconds"] ?? 0)
    }
}
