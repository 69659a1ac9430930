import Foundation
import PipelineDiT

/// DiT as the diffusion code's denoiser.
extension DiT: NoisePredictionModel {
    public var inChannels: Int { config.inChannels }
    public var inputSize: Int { config.inputSize }
    public var numClasses: Int { config.numClasses }
    public var learnsSigma: Bool { config.learnSigma }
    public var supportsGuidance: Bool { config.hasNullClass }
    public var predictsXstart: Bool { config.prediction == .xStart }
}

/// Where a sampling run's DiT comes from: a weights path (file or diffusers
/// folder), or `random:PRESET` (e.g. `random:DiT-S/2`) for benchmarks.
public enum DiTModelSpec: Equatable {
    case weights(path: String)
    case random(DiTPreset)

    public init(parsing s: String) throws {
        if s.hasPrefix("random:") {
            let name = String(s.dropFirst("random:".count))
            guard let p = DiTPreset(parsing: name) else {
                throw DiffusionError.invalidArgument(
                    "unknown DiT preset \"\(name)\" (expected one of \(DiTPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            self = .random(p)
        } else {
            self = .weights(path: s)
        }
    }

    /// Loads or builds the model; `imageSize` (pixels, /8 for the SD VAE) sizes a random one.
    public func load(configFile: String?, numHeads: Int?, imageSize: Int, seed: UInt64 = 0) throws -> DiT {
        switch self {
        case let .weights(path):
            return try DiT.load(path: path, configFile: configFile, numHeads: numHeads)
        case let .random(preset):
            guard imageSize > 0, imageSize % 8 == 0 else {
                throw DiffusionError.invalidArgument("image size \(imageSize) is not a positive multiple of 8")
            }
            return try DiT(randomWeights: DiTConfig(preset: preset, inputSize: imageSize / 8), seed: seed)
        }
    }
}
