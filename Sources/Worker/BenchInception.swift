import ArgumentParser
import Foundation
import Pipeline

struct BenchInception: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inception",
        abstract: "FID Inception-v3 forward throughput (images/s; random weights unless --weights).")

    @Option var batch = 8
    @Option var threads = 2
    @Option(help: "Input image size (resized to 299 inside).") var size = 299
    @Option(help: "Timed iterations (the best is reported).") var iterations = 3
    @Option(help: "Real weights instead of random ones.") var weights: String?
    @Flag var json = false

    func run() throws {
        let r = try InceptionBenchmark.run(batch: batch, threads: threads, size: size, iterations: iterations, weights: weights)
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
