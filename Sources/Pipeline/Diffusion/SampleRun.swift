import Foundation

/// `dit-worker sample` without a decoder: samples N latents with a
/// `SampleEngine` and writes them to a folder as NumPy files:
/// `latents.npy` (float32 N×C×H×W, row i = global sample i) and `labels.npy` (int64 N).
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
    public func run(model: NoisePredictionModel, progress: ((SampleProgress) -> Void)? = nil) throws -> (latents: Tensor, labels: [Int]) {
        guard numSamples > 0 else { throw DiffusionError.invalidArgument("--num-samples must be positive, got \(numSamples)") }
        let engine = try SampleEngine.standard(model: model, settings: settings, steps: steps, respacing: respacing,
                                               seed: seed, labels: labels, total: numSamples)
        try FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let result = try engine.generate(indices: Array(0..<numSamples), batchSize: batchSize, progress: progress)
        try NPY.write(NPYArray(result.latents), to: outputDirectory + "/latents.npy")
        try NPY.write(NPYArray(int64: result.labels.map(Int64.init), shape: [result.labels.count]),
                      to: outputDirectory + "/labels.npy")
        return result
    }
}
