import Foundation

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
                                scratch: String, log: @escaping (String) -> Void) throws -> DispatchFigures {
        try? FileManager.default.removeItem(atPath: scratch)
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let ledger = try Ledger(path: scratch + "/bench-ledger.sqlite")
        let spec = try JobKinds.encode(NoopSpec(outputDir: scratch, items: shards, itemsPerShard: 1))
        let opts = EmbeddedRun.Options(workers: workers, credits: credits, workerExecutable: workerExecutable)
        let cpu0 = processCPUSeconds()
        let (job, state) = try EmbeddedRun.run(ledger: ledger, kind: "noop", spec: spec, options: opts, log: log)
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
