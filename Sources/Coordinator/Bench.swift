import ArgumentParser
import Foundation
import Pipeline

struct CoordinatorBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure the coordinator's own cost (release build).")
    @Option(help: "No-op shards to dispatch.") var shards: Int = 20_000
    @Option(help: "Local worker processes.") var workers: Int = 8
    @Option(help: "Shards each worker holds at once.") var credits: Int = 4
    @Option(help: "dit-worker executable (default: next to dit-coordinator).") var workerBinary: String?
    @Option(help: "Scratch folder (removed and recreated).") var scratch: String = NSTemporaryDirectory() + "dit-coordinator-bench"

    func run() throws {
        let f = try CoordinatorBench.dispatch(shards: shards, workers: workers, credits: credits,
                                              workerExecutable: workerBinary ?? siblingWorker(), scratch: scratch,
                                              log: { _ in })
        print(f.line)
    }
}
