import Foundation
import PipelineMessaging

/// `dit-worker --connect`: a DEALER worker that runs assigned shards with a `ShardRunner`
/// (executors, and the models they load, live as long as the process).
public final class WorkerService {
    public let runner: ShardRunner
    public let endpoint: WorkerEndpoint

    public init(connect address: String, threads: Int, keysDirectory: String?, keyName: String? = nil,
                credits: Int = 1, heartbeatInterval: Double = 1, liveness: Int = 3, giveUpAfter: Double? = nil) throws {
        runner = ShardRunner(threads: threads)
        let host = ProcessInfo.processInfo.hostName
        let pid = getpid()
        let hello = WorkerHello(workerId: "\(host)-\(pid)", hostname: host, pid: pid, threads: threads,
                                capabilities: runner.capabilities, cachedModels: runner.cachedModels)
        let curve = try keysDirectory.map { try KeyStore.loadClientKeys(directory: $0, name: keyName) }
        endpoint = try WorkerEndpoint(connect: address, hello: hello, curve: curve, credits: credits,
                                      heartbeatInterval: heartbeatInterval, liveness: liveness)
        endpoint.giveUpAfter = giveUpAfter
    }

    /// Blocks until stopped or dismissed by the coordinator.
    public func run() throws {
        let runner = self.runner
        try endpoint.run { assignment in
            WorkOutcome(runner.run(kind: assignment.kind, payload: assignment.payload), for: assignment)
        }
    }

    /// SIGTERM (Slurm, Kubernetes preemption): the running shard is abandoned at its next
    /// item boundary and reported FAILED (retryable), then the worker says DISCONNECT and exits.
    public func terminate() {
        runner.abandonRunning()
        endpoint.stop(graceful: true)
    }
}
