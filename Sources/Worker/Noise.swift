import ArgumentParser
import CLIOptions
import Foundation
import PipelineTensor
import PipelineJobs

/// `dit-worker noise`: the `noise` job in this process (the same files as
/// `dit-coordinator run noise` writes).
struct Noise: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: NoiseArguments.abstractText)
    @OptionGroup var options: NoiseArguments
    @Option(help: "Threads (items noised and evaluated at once).") var threads = 1
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        Threads.set(threads)
        let bar = ProgressReporter("noise", total: 1, unit: "shards")
        let result = try LocalJobRun.run(kind: NoiseArguments.kindName, spec: try options.spec(), threads: threads) { done, total in
            bar.total = total
            bar.update(done)
        }
        bar.finish()
        print(result.summary)
        guard result.succeeded else { throw ExitCode(2) }
        if let table = try options.lossTable() { print(table) }
        print("wrote \(options.out)/manifest.json and \(result.outputs.count) shard(s)")
    }
}
