import Foundation
import PipelineTensor
import PipelineFiles
import PipelineImaging
import PipelineVAE
import PipelineDiffusion

/// `dit-worker sample`: samples N latents with a `SampleEngine` and writes them
/// to a folder: `latents.npy` (float32 N×C×H×W, row i = global sample i) and
/// `labels.npy` (int64 N); with an autoencoder also `NNNNNN.png` per sample
/// (decoded batch by batch, quantised as DiT's sample_ddp.py).
public struct SampleRun {
    public var numSamples: Int
    public var seed: UInt64
    public var settings: SamplerSettings
    public var steps: Int
    public var respacing: Respacing?
    public var labels: ClassLabelPolicy
    public var batchSize: Int
    public var outputDirectory: String

    public init(numSamples: Int, seed: UInt64, settings: SamplerSettings, steps: Int, respacing: Respacing? = nil,
                labels: ClassLabelPolicy, batchSize: Int, outputDirectory: String) {
        self.numSamples = numSamples
        self.seed = seed
        self.settings = settings
        self.steps = steps
        self.respacing = respacing
        self.labels = labels
        self.batchSize = batchSize
        self.outputDirectory = outputDirectory
    }

    /// Samples everything; returns the latents and labels after writing them.
    @discardableResult
    public func run(model: NoisePredictionModel, decoder: Autoencoder? = nil,
                    progress: ((SampleProgress) -> Void)? = nil) throws -> (latents: Tensor, labels: [Int]) {
        guard numSamples > 0 else { throw DiffusionError.invalidArgument("--num-samples must be positive, got \(numSamples)") }
        let engine = try SampleEngine.standard(model: model, settings: settings, steps: steps, respacing: respacing,
                                               seed: seed, labels: labels, total: numSamples)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        if let decoder {
            guard decoder.latentChannels == model.inChannels else {
                throw DiffusionError.invalidArgument(
                    "the VAE has \(decoder.latentChannels) latent channels, the DiT \(model.inChannels)")
            }
        }
        var parts: [Tensor] = []
        var labels: [Int] = []
        try engine.generate(indices: Array(0..<numSamples), batchSize: batchSize, progress: progress) { indices, y, latents in
            parts.append(latents)
            labels += y
            if let decoder { try SampleRun.writePNGs(try decoder.decode(latents), indices: indices, to: outputDirectory) }
        }
        let result = (latents: Tensor.concat(parts), labels: labels)
        try NPY.write(NPYArray(result.latents), to: outputDirectory + "/latents.npy")
        try NPY.write(NPYArray(int64: result.labels.map(Int64.init), shape: [result.labels.count]),
                      to: outputDirectory + "/labels.npy")
        return result
    }

    /// Decoded images (N, 3, H, W) in [-1, 1] → `NNNNNN.png` named by global index.
    public static func writePNGs(_ images: Tensor, indices: [Int], to directory: String) throws {
        guard images.rank == 4, images.shape[0] == indices.count, images.shape[1] == 3 else {
            throw DiffusionError.shapeMismatch(what: "decoded images", expected: [indices.count, 3, -1, -1], found: images.shape)
        }
        let h = images.shape[2], w = images.shape[3], per = 3 * h * w
        let bytes = SampleQuantizer.uint8NHWC(images)
        for (r, index) in indices.enumerated() {
            let image = try ImageRGB8(width: w, height: h, pixels: Array(bytes[(r * per)..<((r + 1) * per)]))
            try PNGWriter.write(image, to: directory + "/" + String(format: "%06d.png", index))
        }
    }
}
