import Foundation

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

    enum CodingKeys: String, CodingKey {
        case fid, sfid, precision, recall
        case inceptionScore = "inception_score"
    }

    public static func compare(reference a: String, samples b: String, model: FIDInceptionV3? = nil,
                               mode: InceptionPreprocessing = .tf1ADM, batch: Int = 64) throws -> FIDComparison {
        let fa = try StatisticsFile.read(a), fb = try StatisticsFile.read(b)
        var featsA: (pool: Tensor, spatial: Tensor)?, featsB: (pool: Tensor, spatial: Tensor)?
        func activations(_ f: StatisticsFile) throws -> (pool: Tensor, spatial: Tensor)? {
            guard let model, f.imagesShape != nil else { return nil }
            var pools: [Tensor] = [], spatials: [Tensor] = []
            try InceptionEval.forEachBatch(model: model, npz: f.path, mode: mode, batch: batch) { feats, _ in
                pools.append(feats.pool3); spatials.append(feats.spatial)
            }
            guard !pools.isEmpty else { return nil }
            return (Tensor.concat(pools), Tensor.concat(spatials))
        }
        featsA = try activations(fa)
        featsB = try activations(fb)
        func stats(_ f: StatisticsFile, _ acts: (pool: Tensor, spatial: Tensor)?) throws -> (GaussianStatistics?, GaussianStatistics?) {
            if let p = f.pool { return (p, f.spatial) }
            guard let acts else { return (nil, nil) }
            var p = FeatureStatistics(dimension: acts.pool.shape[1]); try p.add(acts.pool)
            var s = FeatureStatistics(dimension: acts.spatial.shape[1]); try s.add(acts.spatial)
            return (try p.gaussian(), try s.gaussian())
        }
        let (pa, sa) = try stats(fa, featsA), (pb, sb) = try stats(fb, featsB)
        guard let pa, let pb else {
            throw MetricsError.format("\(pa == nil ? a : b): no mu/sigma, and its images (arr_0) need --inception weights to be evaluated")
        }
        var r = FIDComparison(fid: try FrechetDistance.compute(pa, pb))
        if let sa, let sb { r.sfid = try FrechetDistance.compute(sa, sb) }
        if let model, let fb = featsB {
            r.inceptionScore = try InceptionScore.compute(logits: model.admSoftmaxLogits(fb.pool))
            if let fa = featsA {
                let pr = try PrecisionRecall.compute(reference: fa.pool, samples: fb.pool)
                r.precision = pr.precision; r.recall = pr.recall
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
        return lines.joined(separator: "\n")
    }

    public func json() throws -> String {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}
