import ArgumentParser
import Dispatch
import CLIOptions
import Foundation
import Logging
import PipelineTensor
import PipelineJobs

/// `dit-worker --connect tcp://HOST:PORT`: serve shards for a coordinator until dismissed.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Work for a coordinator: run the shards it assigns (models stay loaded between shards).")
    @Option(help: "Coordinator endpoint, e.g. tcp://head:5555.") var connect: String
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "CURVE keys folder (NAME.key, coordinator.pub); required for non-loopback endpoints.") var keys: String?
    @Option(help: "Key name in the keys folder (when it holds several).") var keyName: String?
    @Option(help: "Shards held at once.") var credits: Int = 1
    @Option(help: "Heartbeat interval (s).") var heartbeat: Double = 1
    @Option(help: "Missed heartbeats before the coordinator counts as lost.") var liveness: Int = 3
    @Option(help: "Exit (status 3) once no coordinator has answered for this many seconds (default: keep trying).")
    var giveUpAfter: Double?
    @Option(help: ArgumentHelp("Exit when this process (the embedded `run` that started the worker) dies.", visibility: .hidden))
    var parentPid: Int32?

    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        Threads.set(threads)
        // The parent's death sends SIGTERM (handled below like any stop); a parent already gone: exit now.
        if let parentPid, !ParentProcess.signalOnDeath(of: parentPid) && getppid() != parentPid {
            Logger(label: "dit.worker").error("parent process \(parentPid) is gone; exiting")
            throw ExitCode(3)
        }
        let service = try WorkerService(connect: connect, threads: threads, keysDirectory: keys, keyName: keyName,
                                        credits: credits, heartbeatInterval: heartbeat, liveness: liveness,
                                        giveUpAfter: giveUpAfter)
        // SIGTERM/SIGINT: abandon the running shard, report it, say DISCONNECT, exit.
        var sources: [DispatchSourceSignal] = []
        for s in [SIGTERM, SIGINT] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { service.terminate() }
            src.resume()
            sources.append(src)
        }
        try service.run()
        _ = sources
        if service.endpoint.gaveUp { throw ExitCode(3) }
    }
}
