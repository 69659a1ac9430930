import ArgumentParser
import Foundation
import Pipeline

struct FIDStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidstats",
        abstract: "Inception statistics (mu, sigma, mu_s, sigma_s) of a set of images, with a provenance record.")

    @Option(help: "pytorch-fid Inception weights (.pth or .safetensors).") var inception: String
    @Option(help: "Folder of images.") var images: String?
    @Option(help: "An .npz whose arr_0 holds uint8 (N, H, W, 3) images (ADM batch).") var npz: String?
    @Option(help: "Output statistics .npz.") var out: String
    @Option(help: "pytorch-fid or tf1-adm.") var mode: InceptionPreprocessing = .pytorchFID
    @Option var batch = 50
    @Option var threads = 2
    @Flag(help: "Also stream arr_0 into the output (a complete ADM reference batch).") var embedImages = false
    @Flag(help: "im2col + sgemm for every convolution instead of Winograd (differences ~1e-7 relative).") var noFastConv = false

    func validate() throws {
        guard (images == nil) != (npz == nil) else { throw ValidationError("give exactly one of --images or --npz") }
    }

    func run() throws {
        Threads.set(threads)
        PlanarConv.useFastAlgorithms = !noFastConv
        let job = FIDStatsJob(weightsPath: inception, mode: mode, batch: batch, embedImages: embedImages)
        let progress: (Int, Int) -> Void = { done, total in
            FileHandle.standardError.write(Data("\r\(done)/\(total) images".utf8))
        }
        let r = try npz.map { try job.run(npz: $0, out: out, progress: progress) }
            ?? job.run(imagesIn: images ?? "", out: out, progress: progress)
        FileHandle.standardError.write(Data("\n".utf8))
        print("wrote \(out) (\(r.pool.count) images) and \(StatisticsProvenance.path(forStatistics: out))")
    }
}
