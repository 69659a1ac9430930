import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineMetrics

final class FIDTests: XCTestCase {
    func expected(_ dir: String) throws -> Double {
        let d = try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("fid/\(dir)/expected.json")))
        let obj = try JSONSerialization.jsonObject(with: d) as! [String: Any]
        return (obj["fid"] as! NSNumber).doubleValue
    }

    func stats(_ dir: String, _ which: String) throws -> FeatureStatistics {
        let f = try NPY.read(try Fixtures.require("fid/\(dir)/features_\(which).npy"))
        var s = FeatureStatistics(dimension: f.shape[1])
        try s.add(f.tensor())
        return s
    }

    func checkFixture(_ dir: String, relTol: Double) throws {
        let want = try expected(dir)
        // From pytorch-fid's stats files.
        let a = try StatisticsFile.read(try Fixtures.require("fid/\(dir)/stats_a.npz"))
        let b = try StatisticsFile.read(try Fixtures.require("fid/\(dir)/stats_b.npz"))
        let fromFiles = try FrechetDistance.compute(a.pool!, b.pool!)
        XCTAssertEqual(fromFiles, want, accuracy: relTol * abs(want), "\(dir) from stats files")
        // From the raw features, through our own accumulation.
        let fromFeatures = try FrechetDistance.compute(try stats(dir, "a").gaussian(), try stats(dir, "b").gaussian())
        XCTAssertEqual(fromFeatures, want, accuracy: relTol * abs(want), "\(dir) from features")
        // Our covariance equals np.cov to float64 rounding.
        let mine = try stats(dir, "a").gaussian()
        let ref = a.pool!
        let scale = ref.sigma.map(abs).max()!
        let worst = zip(mine.sigma, ref.sigma).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst / scale, 1e-12, "\(dir) sigma vs np.cov")
        // pytorch-fid's mu is np.mean over float32 activations (a float32 result);
        // ours is float64, so they agree to float32 rounding only.
        let muScale = ref.mu.map(abs).max()!
        XCTAssertLessThan(zip(mine.mu, ref.mu).map { abs($0 - $1) }.max()! / muScale, 1e-6, "\(dir) mu vs np.mean")
    }

    func testGauss64() throws { try checkFixture("gauss64", relTol: 1e-6) }
    func testSingular() throws { try checkFixture("singular", relTol: 1e-3) }

    /// The Cholesky fast path and the eigenvector path compute the same trace on a
    /// positive-definite Σ₁; a singular Σ₁ (fewer samples than dimensions) is refused by the
    /// fast path, so it takes the eigenvector path.
    func testCholeskyPathMatchesEigenPath() throws {
        for dir in ["gauss64", "singular"] {
            let a = try stats(dir, "a").gaussian(), b = try stats(dir, "b").gaussian()
            let eigen = try FrechetDistance.traceSqrtProductEigen(a.sigma, b.sigma, a.dimension)
            let fast = try FrechetDistance.traceSqrtProductCholesky(a.sigma, b.sigma, a.dimension)
            let features = try NPY.read(try Fixtures.require("fid/\(dir)/features_a.npy"))
            if features.shape[0] > features.shape[1] {
                let fast = try XCTUnwrap(fast, "\(dir): positive-definite sigma must take the Cholesky path")
                XCTAssertEqual(fast, eigen, accuracy: 1e-10 * abs(eigen), dir)
            } else {
                XCTAssertNil(fast, "\(dir): a singular sigma must not take the Cholesky path")
            }
        }
    }

    func testIdenticalStatisticsGiveZero() throws {
        let s = try stats("gauss64", "a").gaussian()
        XCTAssertEqual(try FrechetDistance.compute(s, s), 0, accuracy: 1e-8)
    }

    /// Shards merged in any order equal the whole set's statistics to 1e-12 relative.
    func testShardMergeMatchesWhole() throws {
        let f = try NPY.read(try Fixtures.require("fid/gauss64/features_a.npy")).tensor()
        var whole = FeatureStatistics(dimension: 64)
        try whole.add(f)
        let bounds = [0, 7, 130, 131, 300, 500]
        var parts: [FeatureStatistics] = []
        for i in 0..<(bounds.count - 1) {
            var p = FeatureStatistics(dimension: 64)
            // Uneven sub-batches inside a shard too.
            let mid = (bounds[i] + bounds[i + 1]) / 2
            try p.add(f.slice(bounds[i]..<mid))
            try p.add(f.slice(mid..<bounds[i + 1]))
            parts.append(p)
        }
        // Round-trip one partial through its file format.
        let dir = Fixtures.tempDir("fid-merge")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try parts[2].writePartial(to: dir + "/p2.npz")
        parts[2] = try FeatureStatistics.readPartial(dir + "/p2.npz")
        let wholeCov = try whole.covariance()
        let scale = wholeCov.map(abs).max()!
        let muScale = whole.mean.map(abs).max()!
        for order in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]] {
            let m = try FeatureStatistics.merged(order.map { parts[$0] })
            XCTAssertEqual(m.count, 500)
            let cov = try m.covariance()
            XCTAssertLessThan(zip(cov, wholeCov).map { abs($0 - $1) }.max()! / scale, 1e-12, "order \(order)")
            XCTAssertLessThan(zip(m.mean, whole.mean).map { abs($0 - $1) }.max()! / muScale, 1e-12, "order \(order)")
        }
        // Pairwise tree merge as well.
        var left = parts[0]; try left.merge(parts[1])
        var right = parts[3]; try right.merge(parts[4]); try right.merge(parts[2])
        try right.merge(left)
        XCTAssertLessThan(zip(try right.covariance(), wholeCov).map { abs($0 - $1) }.max()! / scale, 1e-12)
    }

    func testMismatchedDimensionsThrow() throws {
        let a = try GaussianStatistics(mu: [0, 0], sigma: [1, 0, 0, 1])
        let b = try GaussianStatistics(mu: [0], sigma: [1])
        XCTAssertThrowsError(try FrechetDistance.compute(a, b))
        var s = FeatureStatistics(dimension: 3)
        XCTAssertThrowsError(try s.add(Tensor(zeros: [2, 4])))
    }
}
