import Foundation
import PipelineFiles
import PipelineInception

/// How a statistics file was made, written as JSON beside it
/// (`STATS.npz` → `STATS.provenance.json`): most "my FID does not match"
/// reports come from a difference recorded here.
public struct StatisticsProvenance: Codable, Equatable {
    public var format = "dit-pipeline/fid-statistics/1"
    /// The feature extractor, e.g. "pytorch-fid FIDInceptionV3 pool3 (2048)".
    public var extractor: String
    /// SHA-256 of the weights file the extractor loaded (none for random weights).
    public var weightsSHA256: String?
    /// The weights file, or `random:SEED` for the random proxy extractor.
    public var weightsFile: String
    /// `InceptionPreprocessing` raw value: which resize and normalisation.
    public var preprocessing: String
    public var imageCount: Int
    /// Images of the source that could not be read and were left out (nil: none).
    public var skippedImages: Int?
    /// Where the images came from (a path, or a job description).
    public var source: String
    /// The sampling recipe (model, sampler, steps, cfg scale, seed...) when the
    /// images came from a sample job.
    public var samplingRecipe: [String: String]?
    /// Which arrays the file holds (e.g. ["mu", "sigma", "mu_s", "sigma_s"]).
    public var arrays: [String]
    public var created: String

    public init(extractor: String, weightsSHA256: String?, weightsFile: String, preprocessing: InceptionPreprocessing,
                imageCount: Int, source: String, samplingRecipe: [String: String]? = nil, arrays: [String]) {
        self.extractor = extractor; self.weightsSHA256 = weightsSHA256; self.weightsFile = weightsFile
        self.preprocessing = preprocessing.rawValue; self.imageCount = imageCount; self.source = source
        self.samplingRecipe = samplingRecipe; self.arrays = arrays
        created = ISO8601DateFormatter().string(from: Date())
    }

    /// `x/STATS.npz` → `x/STATS.provenance.json`.
    public static func path(forStatistics path: String) -> String {
        (path.hasSuffix(".npz") ? String(path.dropLast(4)) : path) + ".provenance.json"
    }

    public func write(besideStatistics statsPath: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self), to: StatisticsProvenance.path(forStatistics: statsPath))
    }

    public static func read(besideStatistics statsPath: String) throws -> StatisticsProvenance {
        let p = path(forStatistics: statsPath)
        guard let d = FileManager.default.contents(atPath: p) else { throw MetricsError.format("\(p): cannot read") }
        do { return try JSONDecoder().decode(StatisticsProvenance.self, from: d) } catch {
            throw MetricsError.format("\(p): not a provenance record (\(error))")
        }
    }
}

extension StatisticsProvenance {
    /// Why two statistics files should not be compared, from their provenance
    /// records (each present one; a file without a record is not checked):
    /// different extractors, weights or preprocessing, or a proxy extractor.
    public static func comparisonWarnings(_ a: String, _ b: String) -> [String] {
        func record(_ p: String) -> StatisticsProvenance? {
            FileManager.default.fileExists(atPath: path(forStatistics: p)) ? try? read(besideStatistics: p) : nil
        }
        var out: [String] = []
        let ra = record(a), rb = record(b)
        if let ra, let rb {
            if ra.extractor != rb.extractor {
                out.append("the two statistics come from different feature extractors: \(a): \"\(ra.extractor)\"; \(b): \"\(rb.extractor)\"")
            } else if ra.weightsSHA256 != rb.weightsSHA256 {
                out.append("the two statistics come from different Inception weights files: \(a): \(ra.weightsSHA256 ?? ra.weightsFile); \(b): \(rb.weightsSHA256 ?? rb.weightsFile)")
            }
            if ra.preprocessing != rb.preprocessing {
                out.append("the two statistics were made with different preprocessing: \(a): \(ra.preprocessing); \(b): \(rb.preprocessing)")
            }
        }
        for (p, r) in [(a, ra), (b, rb)] where r?.weightsSHA256 == nil && r != nil {
            out.append("\(p) was made with the random-weights proxy extractor (\(r!.weightsFile)): not comparable to published FIDs")
        }
        return out
    }
}
