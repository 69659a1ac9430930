import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineInception
@testable import PipelineMetrics
@testable import PipelineJobs

/// Smooth, distinct uint8 images (sums of sinusoids; random noise would give near-identical features).
enum FIDTestImages {
    static func pixels(count: Int, size: Int, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var px = [UInt8]()
        px.reserveCapacity(count * size * size * 3)
        for _ in 0..<count {
            let p = (0..<9).map { _ in Double(rng.next() % 1000) / 1000 }
            for y in 0..<size { for x in 0..<size { for c in 0..<3 {
                let v = 255 * (0.5 + 0.5 * sin(6 * p[c] * Double(x) / Double(size) + 6 * p[c + 3] * Double(y) / Double(size) + 6 * p[c + 6]))
                px.append(UInt8(max(0, min(255, v.rounded()))))
            } } }
        }
        return px
    }

    static func images(count: Int, size: Int, seed: UInt64) throws -> [ImageRGB8] {
        let px = pixels(count: count, size: size, seed: seed), n = size * size * 3
        return try (0..<count).map { try ImageRGB8(width: size, height: size, pixels: Array(px[($0 * n)..<(($0 + 1) * n)])) }
    }
}

/// The `random[:SEED]` Inception: a deterministic proxy feature extractor.
final class InceptionRandomWeightsTests: XCTestCase {
    func testSpecParsing() throws {
        XCTAssertEqual(try InceptionWeightsSpec(parsing: "random"), .random(seed: 0))
        XCTAssertEqual(try InceptionWeightsSpec(parsing: "random:42"), .random(seed: 42))
        XCTAssertEqual(try InceptionWeightsSpec(parsing: "w/pt_inception.pth"), .file(path: "w/pt_inception.pth"))
        XCTAssertEqual(InceptionWeightsSpec.random(seed: 7).description, "random:7")
        XCTAssertThrowsError(try InceptionWeightsSpec(parsing: "random:x")) { e in XCTAssertTrue("\(e)".contains("random:SEED"), "\(e)") }
        XCTAssertThrowsError(try InceptionWeightsSpec(parsing: "random:-1"))
        XCTAssertEqual(InceptionWeightsSpec.file(path: "a.pth").absolute(against: "/x"), .file(path: "/x/a.pth"))
        XCTAssertEqual(InceptionWeightsSpec.random(seed: 3).absolute(against: "/x"), .random(seed: 3))
        // JSON round trip (job specs carry it as a string).
        let data = try JSONEncoder().encode([InceptionWeightsSpec.random(seed: 5), .file(path: "/w.pth")])
        XCTAssertEqual(String(decoding: data, as: UTF8.self), #"["random:5","\/w.pth"]"#)
        XCTAssertEqual(try JSONDecoder().decode([InceptionWeightsSpec].self, from: data), [.random(seed: 5), .file(path: "/w.pth")])
        XCTAssertTrue(InceptionWeightsSpec.random(seed: 0).extractor.hasPrefix("fid-inception-v3 random weights seed 0"))
        XCTAssertTrue(InceptionWeightsSpec.random(seed: 0).extractor.contains("not comparable to published FIDs"))
    }

    /// Same seed → same features bit for bit; another seed → other features. The features
    /// of a few images are finite, not all zero, and differ between images, both pool3 and
    /// the spatial sFID feature (a badly scaled random init vanishes or explodes through
    /// the network's depth, or becomes input-independent).
    func testDeterministicAndUsableFeatures() throws {
        let a = try InceptionWeightsSpec.random(seed: 0).load()
        let b = try InceptionWeightsSpec.random(seed: 0).load()
        let c = try InceptionWeightsSpec.random(seed: 1).load()
        let n = 3
        let images = try InceptionEval.imagesFromNHWC(NPYArray(uint8: FIDTestImages.pixels(count: n, size: 24, seed: 3),
                                                               shape: [n, 24, 24, 3]))
        let fa = try a.features(images), fb = try b.features(images), fc = try c.features(images)
        XCTAssertEqual(fa.pool3.values, fb.pool3.values)
        XCTAssertEqual(fa.spatial.values, fb.spatial.values)
        XCTAssertNotEqual(fa.pool3.values, fc.pool3.values)

        for (name, t) in [("pool3", fa.pool3), ("spatial", fa.spatial), ("logits", fa.logits)] {
            let v = t.values, d = t.shape[1]
            XCTAssertTrue(v.allSatisfy(\.isFinite), "\(name): non-finite values")
            let rms = (v.map { Double($0) * Double($0) }.reduce(0, +) / Double(v.count)).squareRoot()
            XCTAssertGreaterThan(rms, 1e-3, "\(name) vanishes (rms \(rms))")
            XCTAssertLessThan(rms, 1e3, "\(name) explodes (rms \(rms))")
            // Mean over dimensions of the between-image spread relative to the feature scale.
            var spread = 0.0
            for j in 0..<d {
                let col = (0..<n).map { Double(v[$0 * d + j]) }
                let m = col.reduce(0, +) / Double(n)
                spread += col.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n)
            }
            let relative = (spread / Double(d)).squareRoot() / rms
            XCTAssertGreaterThan(relative, 0.01, "\(name): features barely depend on the image (relative spread \(relative))")
            // Not a handful of live units: most pool3 dimensions respond.
            if name == "pool3" {
                let live = (0..<d).filter { j in (0..<n).contains { v[$0 * d + j] != 0 } }.count
                XCTAssertGreaterThan(live, d / 4, "pool3: only \(live) of \(d) dimensions are ever non-zero")
            }
        }
    }

    /// fidstats with random weights: the provenance names the proxy, with no weights hash,
    /// and `fid` warns when comparing it with statistics of another extractor.
    func testProvenanceAndComparisonWarnings() throws {
        let dir = Fixtures.tempDir("inception-random")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPZWriter.write([("arr_0", NPYArray(uint8: FIDTestImages.pixels(count: 2, size: 16, seed: 9), shape: [2, 16, 16, 3]))],
                            to: dir + "/batch.npz")
        let model = try InceptionWeightsSpec.random(seed: 4).load()
        let out = try FIDStatsJob(weights: .random(seed: 4), batch: 2).run(npz: dir + "/batch.npz", out: dir + "/r4.npz", model: model)
        XCTAssertEqual(out.provenance.extractor, InceptionWeightsSpec.random(seed: 4).extractor)
        XCTAssertNil(out.provenance.weightsSHA256)
        XCTAssertEqual(out.provenance.weightsFile, "random:4")
        let json = try String(contentsOfFile: StatisticsProvenance.path(forStatistics: dir + "/r4.npz"), encoding: .utf8)
        XCTAssertTrue(json.contains("fid-inception-v3 random weights seed 4"), json)
        XCTAssertEqual(try StatisticsProvenance.read(besideStatistics: dir + "/r4.npz").weightsSHA256, nil)

        // Same extractor: only the proxy notes. Another extractor (here a hand-made record of
        // pytorch-fid's weights): a warning naming both. No record: nothing to compare.
        try FileManager.default.copyItem(atPath: dir + "/r4.npz", toPath: dir + "/copy.npz")
        try FileManager.default.copyItem(atPath: StatisticsProvenance.path(forStatistics: dir + "/r4.npz"),
                                         toPath: StatisticsProvenance.path(forStatistics: dir + "/copy.npz"))
        let same = StatisticsProvenance.comparisonWarnings(dir + "/r4.npz", dir + "/copy.npz")
        XCTAssertEqual(same.count, 2)
        XCTAssertTrue(same.allSatisfy { $0.contains("proxy") }, "\(same)")
        var other = out.provenance
        other.extractor = InceptionWeightsSpec.file(path: "w.pth").extractor
        other.weightsSHA256 = String(repeating: "ab", count: 32)
        other.weightsFile = "w.pth"
        try FileManager.default.copyItem(atPath: dir + "/r4.npz", toPath: dir + "/pt.npz")
        try other.write(besideStatistics: dir + "/pt.npz")
        let diff = StatisticsProvenance.comparisonWarnings(dir + "/pt.npz", dir + "/r4.npz")
        XCTAssertTrue(diff.contains { $0.contains("different feature extractors") && $0.contains("random weights seed 4") }, "\(diff)")
        try FileManager.default.copyItem(atPath: dir + "/r4.npz", toPath: dir + "/bare.npz")
        XCTAssertEqual(StatisticsProvenance.comparisonWarnings(dir + "/pt.npz", dir + "/bare.npz"), [])
    }
}
