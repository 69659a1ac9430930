import ArgumentParser
import Foundation
import PipelineTensor
import PipelineVAE

struct BenchVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae", abstract: "SD-VAE (AutoencoderKL) encode/decode seconds per image with random weights.")

    @Option(help: "Image side in pixels (multiple of 8).") var imageSize = 256
    @Option var threads = 2
    @Option(help: "Images per encode/decode call.") var batch = 1
    @Option(help: "Timed repetitions.") var iterations = 1
    @Flag(help: "Time only the decoder (for its peak memory).") var decodeOnly = false
    @Flag(help: "Use im2col + sgemm for every convolution.") var noWinograd = false
    @Option(help: "Winograd chunk budget in floats (transformed input + output per chunk).") var winogradBudget: Int?
    @Flag(help: "Print the time spent per operation.") var profile = false
    @Flag(help: "Instead of timing, compare Winograd with im2col + sgemm on one random image.") var verify = false
    @Flag var json = false

    func run() throws {
        Threads.set(threads)
        VAEProfile.enabled = profile
        var options = VAEOptions(winograd: !noWinograd)
        if let winogradBudget { options.winogradChunkBudget = winogradBudget }
        if verify {
            let d = try VAEBenchmark.winogradDeviation(imageSize: imageSize, options: options)
            print(String(format: "winograd vs im2col at %dpx (relative to max(|ref|, 1)): mean %.2e, decoded %.2e",
                         imageSize, d.encode, d.decode))
            return
        }
        let r = try VAEBenchmark.run(imageSize: imageSize, batch: batch, iterations: iterations, decodeOnly: decodeOnly,
                                     options: options)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        let algo = r.winograd ? "winograd+im2col" : "im2col"
        if let e = r.encodeSecondsPerImage, let g = r.encodeGFLOPS {
            print(String(format: "encode %dpx: %.3f s/image, %.1f GFLOP/s (%.1f GFLOP/image)", imageSize, e, g, r.encodeGFLOPPerImage))
        }
        print(String(format: "decode %dpx: %.3f s/image, %.1f GFLOP/s (%.1f GFLOP/image)", imageSize,
                     r.decodeSecondsPerImage, r.decodeGFLOPS, r.decodeGFLOPPerImage))
        for (op, seconds, calls) in VAEProfile.report {
            print(String(format: "  %8.3f s %5d× %@", seconds, calls, op))
        }
        print(String(format: "threads %d, batch %d, %@, peak RSS %.0f MiB", threads, batch, algo, r.peakRSSMiB))
    }
}
