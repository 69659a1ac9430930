import Foundation
import PipelineTensor
import PipelineInception

/// `dit-coordinator fid A B`: compares two statistics files (pytorch-fid or
/// ADM), A the reference and B the samples, as ADM's evaluator does:
/// FID from (mu, sigma); sFID from (mu_s, sigma_s) when both carry them; with
/// an Inception model and images (`arr_0`) also the Inception Score of B and
/// precision/recall of B against A. Statistics missing from a file that has
/// images are computed from its images (ADM's `read_statistics`).
public struct FIDComparison: Codable {
    public var fid: Double
    public var sfid: Double?
    public var inceptionScore: Double?
    public var precision: Double?
    public var recall: Double?
    /// KID (mean over subsets) of B against A, when asked for and both have images.
    public var kid: Double?

    enum CodingKeys: String, CodingKey {
        case fid, sfid, precision, recall, kid
        case inceptionScore = "inception_score"
    }

    /// One side of a comparison: statistics read from its file and/or
    /// Inception activations of its images.
    public struct Side {
        public var path: String
        public var pool: GaussianStatistics?
        public var spatial: GaussianStatistics?
        /// pool3 (N, 2048) and spatial (N, 2023) activations, when computed.
        public var activations: (pool: Tensor, spatial: Tensor)?

        /// Reads `path`; with a model, also evaluates its images (arr_0), if any.
        public init(path: String, model: FIDInceptionV3? = nil, mode: InceptionPreprocessing = .tf1ADM,
                    batch: Int = 64) throws {
            self.path = path
            let f = try StatisticsFile.read(path)
            pool = f.pool; spatial = f.spatial
            if let model, f.imagesShape != nil {
                var pools: [Tensor] = [], spatials: [Tensor] = []
                try InceptionEval.forEachBatch(model: model, npz: path, mode: mode, batch: batch) { feats, _ in
                    pools.append(feats.pool3); spatials.append(feats.spatial)
                }
                if !pools.isEmpty { activations = (Tensor.concat(pools), Tensor.concat(spatials)) }
            }
        }

        /// Stored statistics first (ADM's `read_statistics`), else those of the activations.
        func statistics() throws -> (GaussianStatistics, GaussianStatistics?)? {
            if let pool { return (pool, spatial) }
            guard let acts = activations else { return nil }
            var p = FeatureStatistics(dimension: acts.pool.shape[1]); try p.add(acts.pool)
            var s = FeatureStatistics(dimension: acts.spatial.shape[1]); try s.add(acts.spatial)
            return (try p.gaussian(), try s.gaussian())
        }
    }

    public static func compare(reference a: String, samples b: String, model: FIDInceptionV3? = nil,
                               mode: InceptionPreprocessing = .tf1ADM, batch: Int = 64,
                               kid: Bool = false) throws -> FIDComparison {
        try compare(Side(path: a, model: model, mode: mode, batch: batch),
                    Side(path: b, model: model, mode: mode, batch: batch), model: model, kid: kid)
    }

    public static func compare(_ a: Side, _ b: Side, model: FIDInceptionV3?, kid: Bool = false) throws -> FIDComparison {
        guard let (pa, sa) = try a.statistics() else {
            throw MetricsError.format("\(a.path): no mu/sigma, and its images (arr_0) need --inception weights to be evaluated")
        }
        guard let (pb, sb) = try b.statistics() else {
            throw MetricsError.format("\(b.path): no mu/sigma, and its images (arr_0) need --inception weights to be evaluated")
        }
        var r = FIDComparison(fid: try FrechetDistance.compute(pa, pb))
        if let sa, let sb { r.sfid = try FrechetDistance.compute(sa, sb) }
        if let model, let fb = b.activations {
            r.inceptionScore = try InceptionScore.compute(logits: model.admSoftmaxLogits(fb.pool))
            if let fa = a.activations {
                let pr = try PrecisionRecall.compute(reference: fa.pool, samples: fb.pool)
                r.precision = pr.precision; r.recall = pr.recall
                if kid { r.kid = try KernelInceptionDistance.compute(fa.pool, fb.pool).mean }
            }
        }
        return r
    }

    /// ADM's evaluator's lines, FID first (`FID: <value>`).
    public var text: String {
        var lines = ["FID: \(fid)"]
        if let sfid { lines.append("sFID: \(sfid)") }
        if let inceptionScore { lines.append("Inception Score: \(inceptionScore)") }
        if let precision { lines.append("Precision: \(precision)") }
        if let recall { lines.append("Recall: \(recall)") }
        if let kid { lines.append("KID: \(kid)") }
        return lines.joined(separator: "\n")
    }

    public func json() throws -> String {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}
