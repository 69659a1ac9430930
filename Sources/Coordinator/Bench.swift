import ArgumentParser
import CLIOptions
import Foundation
import PipelineJobs
import PipelineMonitoring

struct CoordinatorBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Measure the coordinator's own cost (release build).")
    @Option(help: "No-op shards to dispatch.") var shards: Int = 20_000
    @Option(help: "Local worker processes.") var workers: Int = 8
    @Option(help: "Shards each worker holds at once.") var credits: Int = 4
    @Option(help: "dit-worker executable (default: next to dit-coordinator).") var workerBinary: String?
    @Option(help: "Scratch folder (removed and recreated).") var scratch: String = NSTemporaryDirectory() + "dit-coordinator-bench"

    @Option(help: "DiT of the sample part (weights, or random:PRESET); 'none' skips it.") var sampleDit = "random:DiT-S/2"
    @Option(help: "Image size of a random:PRESET DiT.") var sampleImageSize = 256
    @Option(help: "VAE folder for the sample part (decode + PNG + npz); none by default.") var sampleVae: String?
    @Option(help: "Samples in the sample part.") var sampleCount = 8
    @Option(help: "Samples per shard in the sample part.") var samplesPerShard = 4
    @Option(help: "DDIM steps in the sample part.") var sampleSteps = 10
    @Option(help: "Worker threads in the sample part.") var sampleThreads = 2
    @OptionGroup var web: HTTPOptions
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        let worker = workerBinary ?? siblingWorker()
        // With --http the dispatch part runs with the status server on its ledger (to measure
        // what a client polling it costs the loop; see the README).
        let metrics = web.bootstrapMetrics()
        var server: StatusServer?
        defer { server?.stop() }
        let f = try CoordinatorBench.dispatch(shards: shards, workers: workers, credits: credits,
                                              workerExecutable: worker, scratch: scratch, ledgerReady: { ledger in
            server = try web.start(ledgerPath: ledger.path, metrics: metrics, logger: coordinatorLog)
        })
        print(f.line)
        server?.stop()
        server = nil
        guard sampleDit != "none" else { return }
        let spec = SampleSpec(outputDir: "", dit: sampleDit.hasPrefix("random:") ? sampleDit : absolute(sampleDit),
                              imageSize: sampleImageSize, vae: sampleVae.map(absolute), numSamples: sampleCount, seed: 0,
                              cfgScale: 4, sampler: "ddim", steps: sampleSteps, batch: samplesPerShard,
                              samplesPerShard: samplesPerShard)
        let s = try CoordinatorBench.sampleOverhead(spec: spec, workerExecutable: worker, scratch: scratch + "-sample",
                                                    threads: sampleThreads)
        print(s.line)
    }
}
