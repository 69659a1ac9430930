import Foundation
import PipelineFiles

/// Statistics .npz files in the two formats users hold:
/// - pytorch-fid: `mu` (D,), `sigma` (D, D), float64 (`np.savez_compressed(path, mu=, sigma=)`);
/// - ADM reference batches: `arr_0` (N, H, W, 3) uint8 and, precomputed,
///   `mu`, `sigma` (pool_3) and `mu_s`, `sigma_s` (spatial, 2023-d).
/// ADM *sample* batches hold `arr_0` (and `arr_1` labels) only.
public struct StatisticsFile {
    public var pool: GaussianStatistics?
    public var spatial: GaussianStatistics?
    /// Shape of `arr_0` when the file carries images.
    public var imagesShape: [Int]?
    public var labelCount: Int?
    public let path: String

    public init(path: String, pool: GaussianStatistics?, spatial: GaussianStatistics? = nil) {
        self.path = path; self.pool = pool; self.spatial = spatial
    }

    public static func read(_ path: String) throws -> StatisticsFile {
        let npz = try NPZFile(path: path)
        var f = StatisticsFile(path: path, pool: nil)
        func gaussian(_ m: String, _ s: String) throws -> GaussianStatistics? {
            guard npz.contains(m) || npz.contains(s) else { return nil }
            let mu = try npz.array(m), sigma = try npz.array(s)
            let d = mu.count
            guard mu.shape.count == 1 || (mu.shape.count == 2 && mu.shape[0] == 1),
                  sigma.shape == [d, d] else {
                throw MetricsError.format("\(path): '\(m)' \(mu.shape) and '\(s)' \(sigma.shape) are not (D,) and (D, D)")
            }
            return try GaussianStatistics(mu: mu.doubles(), sigma: sigma.doubles())
        }
        f.pool = try gaussian("mu", "sigma")
        f.spatial = try gaussian("mu_s", "sigma_s")
        if npz.contains("arr_0") {
            let h = try npz.header("arr_0")
            f.imagesShape = h.shape
        }
        if npz.contains("arr_1") { f.labelCount = try npz.header("arr_1").shape.first }
        guard f.pool != nil || f.imagesShape != nil else {
            throw MetricsError.format("\(path): neither statistics (mu, sigma) nor images (arr_0); has \(npz.names)")
        }
        return f
    }

    /// Writes `mu`, `sigma` and, when known, `mu_s`, `sigma_s`, float64:
    /// pytorch-fid reads the first pair, ADM's `read_statistics` all four.
    /// `images`, when given, streams an ADM `arr_0` into the same archive.
    public static func write(pool: GaussianStatistics, spatial: GaussianStatistics?, to path: String,
                             images: ((NPZWriter) throws -> Void)? = nil) throws {
        let w = try NPZWriter(path: path)
        if let images { try images(w) }
        let d = pool.dimension
        try w.add("mu", NPYArray(float64: pool.mu, shape: [d]))
        try w.add("sigma", NPYArray(float64: pool.sigma, shape: [d, d]))
        if let s = spatial {
            try w.add("mu_s", NPYArray(float64: s.mu, shape: [s.dimension]))
            try w.add("sigma_s", NPYArray(float64: s.sigma, shape: [s.dimension, s.dimension]))
        }
        try w.finish()
    }
}

extension FeatureStatistics {
    /// Saves a partial (shard) accumulator: `count`, `mean`, `m2`, float64, exactly.
    public func writePartial(to path: String) throws {
        try NPZWriter.write([
            ("count", NPYArray(int64: [Int64(count)], shape: [1])),
            ("mean", NPYArray(float64: mean, shape: [dimension])),
            ("m2", NPYArray(float64: m2, shape: [dimension, dimension])),
        ], to: path)
    }

    public static func readPartial(_ path: String) throws -> FeatureStatistics {
        let z = try NPZFile(path: path)
        let c = try z.array("count"), m = try z.array("mean"), m2 = try z.array("m2")
        guard c.count == 1, m.shape.count == 1, m2.shape == [m.count, m.count] else {
            throw MetricsError.format("\(path): not a partial statistics file (count \(c.shape), mean \(m.shape), m2 \(m2.shape))")
        }
        return try FeatureStatistics(dimension: m.count, count: Int(c.int64s()[0]), mean: m.doubles(), m2: m2.doubles())
    }
}
