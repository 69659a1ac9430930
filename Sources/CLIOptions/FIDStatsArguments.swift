import ArgumentParser
import Foundation
import PipelineInception
import PipelineMetrics
import PipelineJobs

/// The flags of `dit-worker fidstats` (single process), also taken by
/// `dit-coordinator run fidstats` and `submit fidstats` (the distributed job).
public struct FIDStatsArguments: ParsableArguments {
    @Option(help: "pytorch-fid Inception weights (.pth or .safetensors), or random[:SEED]: the architecture with deterministic random weights, a proxy extractor whose statistics are not comparable to published FIDs.")
    public var inception: String
    @Option(help: "Folder of images (pytorch-fid's rules: the image files directly in it).") public var images: String?
    @Flag(help: "With --images: also the images in sub-folders (sorted by relative path).") public var recursive = false
    @Option(help: "A sample job's output folder: its NNNNNN.png by global index (its recipe goes into the provenance).")
    public var samples: String?
    @Option(help: "An .npz whose arr_0 holds uint8 (N, H, W, 3) images (ADM batch).") public var npz: String?
    @Option(help: "Output statistics .npz.") public var out: String
    @Option(help: "pytorch-fid or tf1-adm.") public var mode: InceptionPreprocessing = .pytorchFID
    @Option(help: "Images per Inception batch.") public var batch = 50
    @Flag(help: "Also stream arr_0 into the output (a complete ADM reference batch).") public var embedImages = false

    public init() {}

    public func validate() throws {
        guard [images, samples, npz].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --images, --samples or --npz")
        }
        guard !recursive || images != nil else { throw ValidationError("--recursive goes with --images") }
        guard batch > 0 else { throw ValidationError("--batch must be > 0") }
        _ = try weights()
    }

    public func weights() throws -> InceptionWeightsSpec {
        do { return try InceptionWeightsSpec(parsing: inception) } catch { throw ValidationError("--inception: \(error)") }
    }

    public func source() -> FIDStatsSource {
        if let images { return .folder(path: images, recursive: recursive) }
        if let samples { return .sampleOutput(path: samples) }
        return .npz(path: npz ?? "")
    }

    /// The single-process run.
    public func job() throws -> FIDStatsJob {
        FIDStatsJob(weights: try weights(), mode: mode, batch: batch, embedImages: embedImages)
    }

    /// The distributed job's spec (paths made absolute).
    public func spec(imagesPerShard: Int) throws -> FIDStatsSpec {
        FIDStatsSpec(out: absolute(out), source: source().absolute(), inception: try weights().absolute(), mode: mode,
                     batch: batch, embedImages: embedImages, imagesPerShard: imagesPerShard)
    }
}
