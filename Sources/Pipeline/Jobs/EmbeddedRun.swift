import Foundation
import PipelineMessaging
import Logging

/// Local `dit-worker --connect` processes for the embedded one-machine mode; a worker that
/// dies is restarted (a bounded number of times).
public final class LocalWorkerPool {
    public let executable: String
    public let arguments: [String]
    public private(set) var processes: [Process] = []
    public private(set) var restarts = 0
    public let maxRestarts: Int
    private let logger: Logger
    /// How long a local worker waits for a coordinator that stopped answering before it exits (s).
    public static let orphanTimeout = 20.0

    public init(executable: String, connect: String, count: Int, threads: Int, credits: Int,
                maxRestarts: Int = 8, logger: Logger) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw JobError.io(path: executable, reason: "worker executable not found (build dit-worker or pass --worker-binary)")
        }
        self.executable = executable
        // Workers die with this process (parent-death signal) and, should that be unavailable,
        // give up once no coordinator has answered for `orphanTimeout` seconds.
        self.arguments = ["--connect", connect, "--threads", String(threads), "--credits", String(credits),
                          "--parent-pid", String(getpid()), "--give-up-after", String(LocalWorkerPool.orphanTimeout)]
        self.maxRestarts = maxRestarts
        self.logger = logger
        for _ in 0..<count { processes.append(try spawn()) }
    }

    private func spawn() throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        do { try p.run() } catch { throw JobError.io(path: executable, reason: "cannot start: \(error)") }
        return p
    }

    /// Restarts workers that exited; throws when the restart budget is spent.
    public func check() throws {
        for (i, p) in processes.enumerated() where !p.isRunning {
            guard restarts < maxRestarts else {
                throw JobError.io(path: executable, reason: "workers keep exiting (last status \(p.terminationStatus)); giving up")
            }
            restarts += 1
            logger.warning("worker pid \(p.processIdentifier) exited with status \(p.terminationStatus); restarting")
            processes[i] = try spawn()
        }
    }

    /// Waits for every worker to exit (after DISCONNECT); SIGTERM then SIGKILL past the timeout.
    public func shutdown(timeout: Double = 10) {
        let deadline = Date().addingTimeInterval(timeout)
        while processes.contains(where: \.isRunning) && Date() < deadline { usleep(20_000) }
        for p in processes where p.isRunning { p.terminate() }
        let hard = Date().addingTimeInterval(3)
        while processes.contains(where: \.isRunning) && Date() < hard { usleep(20_000) }
        for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) }
        for p in processes { p.waitUntilExit() }
    }
}

/// `dit-coordinator run KIND ... --workers N`: a coordinator and N local workers on loopback
/// that exits when the job ends. Re-running on the same ledger and output folder resumes
/// the job (finished shards are not redone; failed shards are retried).
public enum EmbeddedRun {
    public struct Options {
        public var workers: Int
        public var threadsPerWorker: Int
        public var credits: Int
        public var workerExecutable: String
        public var maxAttempts: Int
        public var leaseSeconds: Double
        public var heartbeatInterval: Double
        /// Called with the coordinator's loopback endpoint once bound (it answers CONTROL there).
        public var onBound: ((String) -> Void)?
        public init(workers: Int, threadsPerWorker: Int = 1, credits: Int = 1, workerExecutable: String,
                    maxAttempts: Int = 3, leaseSeconds: Double = 600, heartbeatInterval: Double = 1) {
            self.workers = workers; self.threadsPerWorker = threadsPerWorker; self.credits = credits
            self.workerExecutable = workerExecutable; self.maxAttempts = maxAttempts
            self.leaseSeconds = leaseSeconds; self.heartbeatInterval = heartbeatInterval
        }
    }

    public static func run(ledger: Ledger, kind: String, spec: Data, options o: Options,
                           shouldStop: @escaping () -> Bool = { false },
                           logger: Logger = Logger(label: "dit.coordinator")) throws -> (jobId: Int64, state: JobState) {
        guard o.workers >= 1 else { throw JobError.badSpec(kind: kind, reason: "--workers must be >= 1") }
        let (job, resumed) = try JobSubmission.submit(ledger: ledger, kind: kind, spec: spec, maxAttempts: o.maxAttempts,
                                                      leaseSeconds: o.leaseSeconds)
        if resumed {
            let state = try ledger.jobState(job)
            logger.info("resuming job \(job) (\(state.rawValue))")
            switch state {
            case .done: return (job, .done)
            case .running: break
            default:
                let reopened = try ledger.retry(job)
                logger.info("job \(job): \(reopened) failed shard(s) back to pending")
            }
        } else {
            logger.info("job \(job) submitted")
        }
        let endpoint = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: nil, heartbeatInterval: o.heartbeatInterval,
                                                logger: logger)
        defer { endpoint.close() }
        o.onBound?(endpoint.boundEndpoint)
        let service = CoordinatorService(ledger: ledger, endpoint: endpoint, logger: logger)
        // Leases from an earlier run belong to workers that no longer exist.
        service.reconnectGrace = 0
        // Local workers on loopback come back within a second of a lost connection; one that
        // died was replaced by a new process (a new worker id) and will not.
        service.dismissGrace = 3
        let pool = try LocalWorkerPool(executable: o.workerExecutable, connect: endpoint.boundEndpoint, count: o.workers,
                                       threads: o.threadsPerWorker, credits: o.credits, logger: logger)
        defer {
            do {
                let dismissed = try service.dismissWorkers(shouldStop: shouldStop)
                logger.info("workers dismissed: \(dismissed)")
            } catch { logger.warning("dismissing the workers: \(error)") }
            pool.shutdown(timeout: 2)
        }
        try service.run {
            if shouldStop() { return true }
            try pool.check()
            return try ledger.jobState(job).isFinished
        }
        return (job, try ledger.jobState(job))
    }
}
