import ArgumentParser
import Foundation
import PipelineDiT

/// `dit-worker bench dit`: DiT forward throughput with random weights.
struct BenchDiT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dit",
        abstract: "DiT forward images/s and GFLOP/s against the sgemm ceiling of its largest GEMM.")

    @Option(help: "DiT-S/B/L/XL with /2, /4 or /8, e.g. DiT-XL/2.") var model = "DiT-S/2"
    @Option(help: "Image size in pixels (latent = size / 8).") var imageSize = 256
    @Option var batch = 8
    @Option var threads = 2
    @Option(help: "Minimum seconds of timed forwards.") var seconds = 3.0
    @Option(help: "Minimum number of timed forwards (after one warm-up).") var iterations = 2
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard let preset = DiTPreset(parsing: model) else {
            throw ValidationError("unknown model '\(model)'; one of \(DiTPreset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let r = try DiTBenchmark.run(preset: preset, imageSize: imageSize, batch: batch, threads: threads,
                                     minSeconds: seconds, minIterations: iterations)
        print(json ? r.json : r.text)
    }
}
