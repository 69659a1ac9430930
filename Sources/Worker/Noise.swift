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

    func run() throws {
        Threads.set(threads)
        let result = try LocalJobRun.run(kind: NoiseArguments.kindName, spec: try options.spec(), threads: threads) { done, total in
            FileHandle.standardError.write(Data("\rshard \(done)/\(total)".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print(result.summary)
        guard result.succeeded else { throw ExitCode(2) }
        if let table = try options.lossTable() { print(table) }
        print("wrote \(options.out)/manifest.json and \(result.outputs.count) shard(s)")
    }
}
