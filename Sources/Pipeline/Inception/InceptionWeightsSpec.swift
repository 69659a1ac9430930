import Foundation
import PipelineWeights
import PipelineFiles

/// Which weights the FID Inception-v3 runs with: pytorch-fid's weights file, or
/// `random[:SEED]`, the same architecture with deterministic random weights
/// (`RandomTensorSource.inception`). The random network is a *proxy* feature extractor for
/// machines without pytorch-fid's weights (nothing is downloaded): its statistics
/// compare runs made with the same seed, never published FIDs, and the provenance
/// record says so.
public enum InceptionWeightsSpec: Equatable, Codable, CustomStringConvertible {
    /// `pt_inception-2015-12-05-6726825d.pth` (a PyTorch zip checkpoint) or the same
    /// tensors as safetensors (F16/F32).
    case file(path: String)
    /// The FID Inception-v3 with `RandomTensorSource.inception(seed:)`.
    case random(seed: UInt64)

    public static let randomPrefix = "random"

    /// `random`, `random:SEED` (decimal), or a weights path.
    public init(parsing s: String) throws {
        if s == InceptionWeightsSpec.randomPrefix {
            self = .random(seed: 0)
        } else if s.hasPrefix(InceptionWeightsSpec.randomPrefix + ":") {
            let tail = s.dropFirst(InceptionWeightsSpec.randomPrefix.count + 1)
            guard let seed = UInt64(tail) else {
                throw InceptionError.badInput("Inception weights \"\(s)\": random:SEED needs a decimal seed (e.g. random:0)")
            }
            self = .random(seed: seed)
        } else {
            guard !s.isEmpty else { throw InceptionError.badInput("Inception weights: empty path") }
            self = .file(path: s)
        }
    }

    /// The string `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case let .file(path): return path
        case let .random(seed): return "\(InceptionWeightsSpec.randomPrefix):\(seed)"
        }
    }

    /// With a relative weights path made absolute against `directory` (job specs are
    /// read by processes started elsewhere).
    public func absolute(against directory: String = FileManager.default.currentDirectoryPath) -> InceptionWeightsSpec {
        guard case let .file(path) = self, !path.hasPrefix("/") else { return self }
        return .file(path: (directory.hasSuffix("/") ? directory : directory + "/") + path)
    }

    /// Whether the extractor is the random proxy (statistics not comparable to published FIDs).
    public var isProxy: Bool { if case .random = self { return true } else { return false } }

    public func load(options: InceptionOptions = .standard) throws -> FIDInceptionV3 {
        switch self {
        case let .file(path): return try FIDInceptionV3(path: path, options: options)
        case let .random(seed): return try FIDInceptionV3(source: RandomTensorSource.inception(seed: seed), options: options)
        }
    }

    /// What the provenance record names as the extractor.
    public var extractor: String {
        let outputs = "pool3 2048 -> mu/sigma; mixed_6/conv[..., :7] 2023 -> mu_s/sigma_s"
        switch self {
        case .file:
            return "pytorch-fid FIDInceptionV3 (pt_inception-2015-12-05): " + outputs
        case let .random(seed):
            return "fid-inception-v3 random weights seed \(seed) (proxy extractor, not comparable to published FIDs): " + outputs
        }
    }

    /// (SHA-256 of the weights file, the file) for the provenance record; no hash for random weights.
    public func weightsIdentity() throws -> (sha256: String?, file: String) {
        switch self {
        case let .file(path): return (try SHA256.file(path).sha256, path)
        case .random: return (nil, description)
        }
    }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        do { self = try InceptionWeightsSpec(parsing: s) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(error)"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
