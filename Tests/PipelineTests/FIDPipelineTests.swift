import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineInception
@testable import PipelineMetrics
@testable import PipelineJobs

/// fidstats and fid on ADM-style batches, end to end (few tiny images: each costs one 299 px forward).
final class FIDPipelineTests: XCTestCase {
    /// Smooth, distinct images (random noise would give near-identical features).
    func writeBatch(_ path: String, count: Int, size: Int, seed: UInt64, labels: Bool) throws {
        var rng = SplitMix64(seed: seed)
        var px = [UInt8]()
        for _ in 0..<count {
            let p = (0..<9).map { _ in Double(rng.next() % 1000) / 1000 }
            for y in 0..<size { for x in 0..<size { for c in 0..<3 {
                let v = 255 * (0.5 + 0.5 * sin(6 * p[c] * Double(x) / Double(size) + 6 * p[c + 3] * Double(y) / Double(size) + 6 * p[c + 6]))
                px.append(UInt8(max(0, min(255, v.rounded()))))
            } } }
        }
        var arrays = [("arr_0", NPYArray(uint8: px, shape: [count, size, size, 3]))]
        if labels { arrays.append(("arr_1", NPYArray(int64: (0..<Int64(count)).map { $0 % 3 }, shape: [count]))) }
        try NPZWriter.write(arrays, to: path)
    }

    func testFIDStatsAndADMComparison() throws {
        let weights = try Fixtures.require("inception/fid-inception/weights.f16.safetensors")
        let model = try FIDInceptionV3(path: weights)
        let dir = Fixtures.tempDir("fidjob")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeBatch(dir + "/ref.npz", count: 4, size: 16, seed: 1, labels: false)
        try writeBatch(dir + "/sample.npz", count: 4, size: 16, seed: 2, labels: true)

        // fidstats (batches of 3 + 1), ADM preprocessing, images embedded.
        let job = FIDStatsJob(weights: .file(path: weights), mode: .tf1ADM, batch: 3, embedImages: true,
                              samplingRecipe: ["sampler": "ddpm"])
        let out = try job.run(npz: dir + "/ref.npz", out: dir + "/ref_stats.npz", model: model)
        XCTAssertEqual(out.pool.count, 4)
        let file = try StatisticsFile.read(dir + "/ref_stats.npz")
        XCTAssertEqual(file.imagesShape, [4, 16, 16, 3])
        XCTAssertEqual(file.spatial?.dimension, 2023)
        XCTAssertEqual(try NPZFile(path: dir + "/ref_stats.npz").array("arr_0").bytes,
                       try NPZFile(path: dir + "/ref.npz").array("arr_0").bytes)
        let prov = try StatisticsProvenance.read(besideStatistics: dir + "/ref_stats.npz")
        XCTAssertEqual(prov.preprocessing, "tf1-adm")
        XCTAssertEqual(prov.imageCount, 4)
        XCTAssertEqual(prov.weightsSHA256, "bb1ffc128722702ab0f3eabec66f4da8a7abbab17abe2f826b0ecf47f51b641d")
        XCTAssertEqual(prov.samplingRecipe?["sampler"], "ddpm")

        // fidstats --images: the same pixels as PNG files (plus files it must skip) give the same statistics.
        let folder = dir + "/folder"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let px = try NPZFile(path: dir + "/ref.npz").array("arr_0").bytes
        for i in 0..<4 {
            let img = try ImageRGB8(width: 16, height: 16, pixels: Array(px[(i * 768)..<((i + 1) * 768)]))
            try PNGWriter.write(img, to: folder + "/img\(i).png")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        XCTAssertEqual(try FIDStatsJob.imageFiles(in: folder).map { ($0 as NSString).lastPathComponent },
                       ["img0.png", "img1.png", "img2.png", "img3.png"])
        let fromFolder = try FIDStatsJob(weights: .file(path: weights), mode: .tf1ADM, batch: 3)
            .run(imagesIn: folder, out: dir + "/folder_stats.npz", model: model)
        XCTAssertEqual(fromFolder.pool.count, 4)
        let fMu = try StatisticsFile.read(dir + "/folder_stats.npz").pool!.mu
        XCTAssertLessThan(zip(fMu, file.pool!.mu).map { abs($0 - $1) }.max()!, 1e-6)
        XCTAssertEqual(fromFolder.provenance.source, folder)

        // fid: the reference (stats + arr_0) against a raw sample batch (arr_0 + arr_1).
        let a = try FIDComparison.Side(path: dir + "/ref_stats.npz", model: model, mode: .tf1ADM)
        let b = try FIDComparison.Side(path: dir + "/sample.npz", model: model, mode: .tf1ADM)
        XCTAssertNil(b.pool)
        // The stored mean equals the mean of the activations computed in one batch of 4.
        var whole = FeatureStatistics(dimension: 2048)
        try whole.add(a.activations!.pool)
        let muScale = whole.mean.map(abs).max()!
        XCTAssertLessThan(zip(whole.mean, file.pool!.mu).map { abs($0 - $1) }.max()! / muScale, 1e-5)
        let r = try FIDComparison.compare(a, b, model: model, kid: true)
        XCTAssertNotNil(r.kid)
        XCTAssertNotNil(r.sfid); XCTAssertNotNil(r.inceptionScore); XCTAssertNotNil(r.precision); XCTAssertNotNil(r.recall)
        XCTAssertGreaterThanOrEqual(r.inceptionScore!, 1)
        var sb = FeatureStatistics(dimension: 2048); try sb.add(b.activations!.pool)
        XCTAssertEqual(r.fid, try FrechetDistance.compute(file.pool!, try sb.gaussian()), accuracy: 1e-9 * max(1, r.fid))
        XCTAssertTrue(r.text.hasPrefix("FID: "))
        let json = try JSONSerialization.jsonObject(with: Data(try r.json().utf8)) as! [String: Any]
        XCTAssertNotNil(json["fid"]); XCTAssertNotNil(json["inception_score"])
        // A sample batch without statistics and without a model is a clear error.
        XCTAssertThrowsError(try FIDComparison.compare(reference: dir + "/ref_stats.npz", samples: dir + "/sample.npz")) { e in
            XCTAssertTrue("\(e)".contains("sample.npz"), "\(e)")
        }
    }
}
