import ArgumentParser
import Dispatch
import CLIOptions
import Foundation
import PipelineTensor
import PipelineJobs
import PipelineMessaging
import Logging
import PipelineMonitoring

/// Stops a loop on SIGINT/SIGTERM (checked between ticks).
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var sources: [DispatchSourceSignal] = []
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
    func set() { lock.lock(); stopped = true; lock.unlock() }
    init(signals: [Int32] = [SIGINT, SIGTERM], onSignal: (() -> Void)? = nil) {
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { [weak self] in self?.set(); onSignal?() }
            src.resume()
            sources.append(src)
        }
    }
}

/// The coordinator executable's logger (swift-log; `--log-level`, `--log-format`).
let coordinatorLog = Logger(label: "dit.coordinator")

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the coordinator: hand the ledger's shards to workers.")
    @OptionGroup var ledger: LedgerOptions
    @Option(help: "ZeroMQ endpoint to bind (ROUTER).") var bind: String = "tcp://*:5555"
    @Option(help: "CURVE keys folder (coordinator.key, workers/*.pub allow-list); required for non-loopback binds.")
    var keys: String?
    @Option(help: "Heartbeat interval (s).") var heartbeat: Double = 1
    @Option(help: "Missed heartbeats before a worker counts as dead.") var liveness: Int = 3
    @Flag(help: "Exit once no job in the ledger is running, dismissing the connected workers (batch allocations: Slurm). Submit first.")
    var exitWhenDone = false
    @Option(help: "On SIGTERM/SIGINT, keep serving up to this many seconds while connected workers still hold leases, so the reports of workers stopped with it (preemption) reach the ledger.")
    var drainSeconds: Double = 0
    @OptionGroup var web: HTTPOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        let metrics = web.bootstrapMetrics()
        let lock = try ledger.lock(role: "serve")
        defer { lock.release() }
        let l = try ledger.open()
        var curve = try keys.map { try KeyStore.loadServerKeys(directory: $0, logger: coordinatorLog) }
        // Whoever holds coordinator.key may send CONTROL with it (`--keys DIR --key-name coordinator`),
        // e.g. inside the coordinator's own pod, which has no worker key.
        if let own = curve?.publicKey { curve?.allowedClientKeys.insert(own) }
        let endpoint = try CoordinatorEndpoint(bind: bind, curve: curve, heartbeatInterval: heartbeat, liveness: liveness,
                                               logger: coordinatorLog)
        defer { endpoint.close() }
        try lock.record(endpoint: LedgerLock.advertised(endpoint.boundEndpoint))
        coordinatorLog.notice("coordinator on \(endpoint.boundEndpoint), ledger \(l.path)")
        let server = try web.start(ledgerPath: l.path, metrics: metrics, logger: coordinatorLog)
        defer { server?.stop() }
        let stop = StopFlag()
        let service = CoordinatorService(ledger: l, endpoint: endpoint, logger: coordinatorLog)
        try service.run { try stop.isSet || (exitWhenDone && !l.hasRunningJobs()) }
        if stop.isSet && drainSeconds > 0 {
            let drained = try service.drain(seconds: drainSeconds)
            coordinatorLog.notice(drained ? "drained: no connected worker holds a lease" : "drain time of \(drainSeconds) s over")
        }
        if exitWhenDone && !stop.isSet {
            coordinatorLog.info("no job left running: dismissing \(endpoint.connectedPeers.count) worker(s)")
            let dismissed = try service.dismissWorkers { stop.isSet }
            coordinatorLog.info("workers dismissed: \(dismissed)")
        }
        // Otherwise (a signal) workers are not dismissed: they reconnect to the restarted
        // coordinator by themselves, and their leases stay in the ledger until then.
        coordinatorLog.notice("coordinator stopped (\(service.core.dispatched) shards dispatched)")
    }
}

/// The `dit-worker` next to this executable.
func siblingWorker() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("dit-worker").path
}

struct EmbeddedOptions: ParsableArguments {
    @Option(help: "Local worker processes.") var workers: Int = 1
    @Option(help: "Threads per worker.") var threads: Int = 1
    @Option(help: "Shards each worker holds at once.") var credits: Int = 1
    @Option(help: "dit-worker executable (default: next to dit-coordinator).") var workerBinary: String?
}

/// `run KIND ... --workers N`: coordinator + N local workers; exits when the job ends.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a job on this machine: a coordinator and N local workers (resumes on the same ledger).",
        subcommands: [RunKind<SampleOptions>.self, RunKind<EncodeOptions>.self, RunKind<NoiseOptions>.self,
                       RunKind<FIDStatsOptions>.self, RunKind<SyntheticOptions>.self, RunKind<NoopOptions>.self])
}

struct RunKind<K: KindOptions>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: K.kindName, abstract: K.abstract) }
    @OptionGroup var kind: K
    @OptionGroup var embedded: EmbeddedOptions
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var sharding: ShardingOptions
    @OptionGroup var web: HTTPOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        let metrics = web.bootstrapMetrics()
        let lock = try ledger.lock(role: "run")
        defer { lock.release() }
        let l = try ledger.open()
        let server = try web.start(ledgerPath: l.path, metrics: metrics, logger: coordinatorLog)
        defer { server?.stop() }
        let stop = StopFlag()
        var opts = EmbeddedRun.Options(workers: embedded.workers, threadsPerWorker: embedded.threads,
                                       credits: embedded.credits, workerExecutable: embedded.workerBinary ?? siblingWorker(),
                                       maxAttempts: sharding.maxAttempts, leaseSeconds: sharding.leaseSeconds)
        opts.onBound = { try? lock.record(endpoint: $0) }
        let (job, state) = try EmbeddedRun.run(ledger: l, kind: K.kindName, spec: try kind.spec(), options: opts,
                                               shouldStop: { stop.isSet }, logger: coordinatorLog)
        print(try JobStatusReport.load(ledger: l, jobId: job).render())
        switch state {
        case .done:
            if let report = try (kind as? ReportingKindOptions)?.report() { print(report) }
        case .running: throw ExitCode(130)   // interrupted; re-run to resume
        default: throw ExitCode(2)
        }
    }
}
