import Foundation
import PipelineTensor

/// Running mean and covariance of feature vectors, in float64, mergeable:
/// each shard accumulates its own partial (count, mean, M2 = Σ (x − mean)(x − mean)ᵀ),
/// and partials combine with Chan et al.'s pairwise update,
///   n = nₐ + n_b, δ = mean_b − meanₐ, mean = meanₐ + δ·n_b/n, M2 = M2ₐ + M2_b + δδᵀ·nₐn_b/n,
/// so the merged statistics equal the whole set's (up to float64 rounding) in
/// any order. Batches are centred on their own mean before the outer product
/// (dgemm), which avoids the cancellation of a raw Σxxᵀ − n·mean·meanᵀ.
public struct FeatureStatistics: Equatable {
    public private(set) var dimension: Int
    public private(set) var count: Int
    public private(set) var mean: [Double]
    /// Row-major D×D.
    public private(set) var m2: [Double]

    public init(dimension: Int) {
        self.dimension = dimension
        count = 0
        mean = [Double](repeating: 0, count: dimension)
        m2 = [Double](repeating: 0, count: dimension * dimension)
    }

    public init(dimension: Int, count: Int, mean: [Double], m2: [Double]) throws {
        guard mean.count == dimension, m2.count == dimension * dimension, count >= 0 else {
            throw MetricsError.shape("statistics: mean \(mean.count), m2 \(m2.count) for dimension \(dimension)")
        }
        self.dimension = dimension; self.count = count; self.mean = mean; self.m2 = m2
    }

    /// Adds rows of `features` (N, D).
    public mutating func add(_ features: Tensor) throws {
        guard features.rank == 2, features.shape[1] == dimension else {
            throw MetricsError.shape("statistics of dimension \(dimension) cannot take features \(features.shape)")
        }
        let n = features.shape[0]
        if n == 0 { return }
        var batch = FeatureStatistics(dimension: dimension)
        batch.count = n
        let d = dimension
        var centred = [Double](repeating: 0, count: n * d)
        let src = features.data
        for r in 0..<n { for j in 0..<d { batch.mean[j] += Double(src[r * d + j]) } }
        for j in 0..<d { batch.mean[j] /= Double(n) }
        for r in 0..<n { for j in 0..<d { centred[r * d + j] = Double(src[r * d + j]) - batch.mean[j] } }
        centred.withUnsafeBufferPointer { c in
            batch.m2.withUnsafeMutableBufferPointer { m in
                BLAS.dgemm(transA: true, transB: false, m: d, n: d, k: n, a: c.baseAddress!, lda: d,
                           b: c.baseAddress!, ldb: d, beta: 0, c: m.baseAddress!, ldc: d)
            }
        }
        try merge(batch)
    }

    /// Combines another partial into this one.
    public mutating func merge(_ other: FeatureStatistics) throws {
        guard other.dimension == dimension else {
            throw MetricsError.shape("cannot merge statistics of dimension \(other.dimension) into \(dimension)")
        }
        if other.count == 0 { return }
        if count == 0 { self = other; return }
        let na = Double(count), nb = Double(other.count), n = na + nb
        let d = dimension
        var delta = [Double](repeating: 0, count: d)
        for j in 0..<d { delta[j] = other.mean[j] - mean[j] }
        let w = na * nb / n
        for i in 0..<d {
            let di = delta[i] * w
            for j in 0..<d { m2[i * d + j] += other.m2[i * d + j] + di * delta[j] }
        }
        for j in 0..<d { mean[j] += delta[j] * nb / n }
        count += other.count
    }

    public static func merged(_ parts: [FeatureStatistics]) throws -> FeatureStatistics {
        guard let first = parts.first else { throw MetricsError.shape("no statistics to merge") }
        var acc = FeatureStatistics(dimension: first.dimension)
        for p in parts { try acc.merge(p) }
        return acc
    }

    /// `np.cov(features, rowvar=False)` (ddof 1).
    public func covariance() throws -> [Double] {
        guard count >= 2 else { throw MetricsError.tooFewSamples("covariance needs at least 2 feature vectors, have \(count)") }
        let s = 1 / Double(count - 1)
        return m2.map { $0 * s }
    }

    /// Mean and covariance as pytorch-fid and ADM store them.
    public func gaussian() throws -> GaussianStatistics {
        try GaussianStatistics(mu: mean, sigma: covariance())
    }
}

/// The (mu, sigma) pair FID is computed from (float64).
public struct GaussianStatistics {
    public var mu: [Double]
    /// Row-major D×D.
    public var sigma: [Double]
    public var dimension: Int { mu.count }

    public init(mu: [Double], sigma: [Double]) throws {
        guard sigma.count == mu.count * mu.count, !mu.isEmpty else {
            throw MetricsError.shape("sigma holds \(sigma.count) values, mu \(mu.count)")
        }
        self.mu = mu; self.sigma = sigma
    }
}

public enum MetricsError: Error, CustomStringConvertible {
    case shape(String)
    case tooFewSamples(String)
    case numerical(String)
    case format(String)

    public var description: String {
        switch self {
        case let .shape(s), let .tooFewSamples(s), let .numerical(s), let .format(s): return s
        }
    }
}
