import ArgumentParser
import Foundation
import PipelineTensor
import PipelineInception

struct BenchInception: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inception",
        abstract: "FID Inception-v3 forward throughput (images/s; random weights unless --weights).")

    @Option var batch = 8
    @Option var threads = 2
    @Option(help: "Input image size (resized to 299 inside).") var size = 299
    @Option(help: "Timed iterations (the best is reported).") var iterations = 3
    @Option(help: "Real weights instead of random ones.") var weights: String?
    @Flag(help: "im2col + sgemm for every convolution (no Winograd).") var noFastConv = false
    @Flag(help: "Print the time spent per operation (per batch).") var profile = false
    @Flag(help: "Instead of timing, compare the fast convolutions with im2col + sgemm on one random batch.") var verify = false
    @Flag var json = false

    func run() throws {
        Threads.set(threads)
        if verify {
            let d = try InceptionBenchmark.fastDeviation(batch: batch, size: size, weights: weights)
            print(String(format: "fast vs im2col convolutions (max abs difference / max |im2col|): pool3 %.2e, logits %.2e, spatial %.2e",
                         d.pool3, d.logits, d.spatial))
            return
        }
        OpProfile.enabled = profile
        let r = try InceptionBenchmark.run(batch: batch, threads: threads, size: size, iterations: iterations, weights: weights,
                                             options: InceptionOptions(fastConvolutions: !noFastConv))
        if profile {
            let total = OpProfile.report.reduce(0) { $0 + $1.1 }
            for (op, seconds, calls) in OpProfile.report {
                print(String(format: "  %7.1f ms %5.1f%% %4d× %@", 1000 * seconds / Double(iterations),
                             100 * seconds / total, calls / iterations, op))
            }
        }
        if json {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
        } else {
            print(String(format: "inception %dpx batch %d, %d threads: %.3f s/batch, %.2f img/s, %.1f GFLOP/s (sgemm ceiling now %.1f GFLOP/s, %.0f%%), %.2f CPU s/batch",
                         r.size, r.batch, r.threads, r.secondsPerBatch, r.imagesPerSecond, r.gflops, r.ceilingGflops,
                         100 * r.gflops / r.ceilingGflops, r.cpuSecondsPerBatch))
        }
    }
}
