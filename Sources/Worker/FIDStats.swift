import ArgumentParser
import CLIOptions
import Foundation
import PipelineTensor
import PipelineInception
import PipelineMetrics

struct FIDStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidstats",
        abstract: "Inception statistics (mu, sigma, mu_s, sigma_s) of a set of images, with a provenance record.",
        discussion: "The same flags run it distributed: dit-coordinator run fidstats ... --workers N.")

    @OptionGroup var stats: FIDStatsArguments
    @Option(help: "Threads for BLAS and elementwise work.") var threads = 2
    @Flag(help: "im2col + sgemm for every convolution instead of Winograd (differences ~1e-7 relative).") var noFastConv = false
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        Threads.set(threads)
        let job = try stats.job()
        let model = try job.weights.load(options: InceptionOptions(fastConvolutions: !noFastConv))
        let bar = ProgressReporter("fidstats", total: 1, unit: "images")
        let r = try job.run(source: stats.source(), out: stats.out, model: model) { done, total in
            bar.total = total
            bar.update(done)
        }
        bar.finish()
        for f in r.failures { workerLog.warning("skipped \(f.path): \(f.reason)") }
        print("wrote \(stats.out) (\(r.pool.count) images\(r.failures.isEmpty ? "" : ", \(r.failures.count) unreadable skipped")) and \(StatisticsProvenance.path(forStatistics: stats.out))")
    }
}
