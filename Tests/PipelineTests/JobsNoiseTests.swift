import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT
@testable import PipelineDiffusion
@testable import PipelineJobs

final class JobsNoiseTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("noise-job") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func run(_ spec: NoiseSpec, threads: Int = 1) throws -> LocalJobRun.Result {
        try LocalJobRun.run(kind: "noise", spec: try JobKinds.encode(spec), threads: threads)
    }

    // MARK: the draw protocol

    func testDrawsDependOnlyOnSeedItemAndDraw() throws {
        let a = try NoiseDraws(seed: 7, numTimesteps: 1000), b = try NoiseDraws(seed: 7, numTimesteps: 1000)
        func eps(_ d: NoiseDraws, _ item: Int, _ k: Int) throws -> [Float] {
            var v = [Float](repeating: 0, count: 37)
            try v.withUnsafeMutableBufferPointer { try d.eps($0.baseAddress!, count: 37, item: item, draw: k) }
            return v
        }
        // Any order of calls gives the same values.
        let forward = try (0..<5).flatMap { i in try (0..<3).map { k in try a.timestep(item: i, draw: k) } }
        let backward = try (0..<5).reversed().flatMap { i in try (0..<3).reversed().map { k in try b.timestep(item: i, draw: k) } }
        XCTAssertEqual(forward, Array(backward.reversed()))
        XCTAssertEqual(try eps(a, 3, 2), try eps(b, 3, 2))
        XCTAssertTrue(forward.allSatisfy { (0..<1000).contains($0) })
        // The keys are the protocol's (seed, index = item, step = draw) under the noise job's purposes.
        let philox = PhiloxNoise(seed: 7)
        XCTAssertEqual(try a.timestep(item: 3, draw: 2), try philox.uniformInt(below: 1000, index: 3, purpose: .noisingTimestep, step: 2))
        XCTAssertEqual(try eps(a, 3, 2), try philox.normal(index: 3, shape: [37], purpose: .noisingEps, step: 2).values)
        // Each part of the key matters; the purposes are not sampling's or the encoder's.
        XCTAssertNotEqual(try eps(a, 3, 2), try eps(a, 3, 1))
        XCTAssertNotEqual(try eps(a, 3, 2), try eps(a, 4, 2))
        XCTAssertNotEqual(try eps(a, 3, 2), try eps(try NoiseDraws(seed: 8, numTimesteps: 1000), 3, 2))
        for p in [NoisePurpose.initialLatent, .samplerStep, .vaePosterior, .trainingNoise, .noisingPosterior] {
            XCTAssertNotEqual(try eps(a, 3, 2), try philox.normal(index: 3, shape: [37], purpose: p, step: 2).values, "\(p)")
        }
        XCTAssertEqual(Set(NoisePurpose.allCases.map(\.rawValue)).count, NoisePurpose.allCases.count)
        // Timesteps cover the chain uniformly enough: every bucket of 100 hit by 2000 draws.
        let ts = try (0..<2000).map { try a.timestep(item: $0, draw: 0) }
        XCTAssertEqual(Set(ts.map { $0 / 100 }).count, 10)
    }

    func testLossBucketsRangesAndMerge() throws {
        var all = try LossBuckets(numTimesteps: 1000, buckets: 7, hasVB: true)
        var covered: [Int] = []
        for b in 0..<7 {
            let r = all.range(ofBucket: b)
            covered += Array(r)
            for t in r { XCTAssertEqual(all.bucket(of: t), b) }
        }
        XCTAssertEqual(covered, Array(0..<1000))
        var p1 = all, p2 = all
        for t in stride(from: 0, to: 1000, by: 37) {
            let v = Float(t) / 100
            all.add(t: t, mse: v, vb: v / 10, loss: v * 1.1)
            if t < 500 { p1.add(t: t, mse: v, vb: v / 10, loss: v * 1.1) } else { p2.add(t: t, mse: v, vb: v / 10, loss: v * 1.1) }
        }
        try p1.merge(p2)
        XCTAssertEqual(p1.report().buckets.map(\.count), all.report().buckets.map(\.count))
        XCTAssertEqual(all.report().overall.count, 28)
        XCTAssertThrowsError(try p1.merge(try LossBuckets(numTimesteps: 1000, buckets: 10, hasVB: true)))
        XCTAssertThrowsError(try LossBuckets(numTimesteps: 1000, buckets: 0, hasVB: true))
        XCTAssertTrue(all.report().table.contains("[0, 143)"))
    }

    // MARK: the job in process

    /// x_t = GaussianDiffusion.qSample(x0, t, eps) with x0 = scale · (mean + std · e), e the
    /// (seed, item, draw) posterior draw; the same rows whatever the shard size.
    func testRowsMatchQSampleAndDoNotDependOnSharding() throws {
        let set = LatentSetBuilder()
        let manifest = try set.write(to: dir + "/enc")
        XCTAssertEqual(manifest.shards.count, 3)
        var outputs: [NoiseRows] = []
        for perShard in [1, 2, 5] {
            let r = try run(NoiseSpec(outputDir: dir + "/n\(perShard)", input: dir + "/enc", seed: 11, draws: 3, itemsPerShard: perShard))
            XCTAssertTrue(r.succeeded, r.summary)
            outputs.append(try NoiseRows(dir + "/n\(perShard)"))
        }
        XCTAssertEqual(outputs[0].rows, outputs[1].rows)
        XCTAssertEqual(outputs[0].rows, outputs[2].rows)
        let good = (0..<set.images).filter { !set.bad.contains($0) }
        XCTAssertEqual(outputs[0].order, good.flatMap { i in (0..<3).map { [Int64(i), Int64($0)] } }, "item-major, then draw")

        let diffusion = try GaussianDiffusion.create(respacing: nil)
        let draws = try NoiseDraws(seed: 11, numTimesteps: 1000)
        let per = 4 * 8 * 8
        for i in good {
            for k in 0..<3 {
                let row = try XCTUnwrap(outputs[0].rows[[Int64(i), Int64(k)]])
                XCTAssertEqual(row.t, Int64(try draws.timestep(item: i, draw: k)))
                XCTAssertEqual(row.y, Int64(i % 10))
                let e = try PhiloxNoise(seed: 11).normal(index: i, shape: [per], purpose: .noisingEps, step: k).values
                XCTAssertEqual(row.eps, e)
                let post = try PhiloxNoise(seed: 11).normal(index: i, shape: [per], purpose: .noisingPosterior, step: k).values
                let mean = set.mean(i), std = set.std(i)
                let x0 = (0..<per).map { (mean[$0] + std[$0] * post[$0]) * Float(0.18215) }
                let expected = try diffusion.qSample(Tensor(shape: [1, 4, 8, 8], values: x0), t: [Int(row.t)],
                                                     noise: Tensor(shape: [1, 4, 8, 8], values: e))
                XCTAssertEqual(row.xT, expected.values, "x_t of item \(i) draw \(k)")
            }
        }
        // The manifest lists every shard; a second run writes the same bytes.
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/n2/manifest.json"))) as? [String: Any]
        XCTAssertEqual(m?["rows"] as? Int, good.count * 3)
        _ = try run(NoiseSpec(outputDir: dir + "/again", input: dir + "/enc", seed: 11, draws: 3, itemsPerShard: 2))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/again/manifest.json")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/n2/manifest.json")))
        XCTAssertEqual(try NoiseRows(dir + "/again").rows, outputs[1].rows)
    }

    func testStoredX0UsesTheEncodedLatent() throws {
        let set = LatentSetBuilder(images: 3, imagesPerShard: 3, bad: [], scaling: nil)
        try set.write(to: dir + "/enc")
        // Without the scaling in the shard, re-drawing is refused with a reason naming the shard.
        let refused = try run(NoiseSpec(outputDir: dir + "/r", input: dir + "/enc"))
        XCTAssertEqual(refused.failedShards.count, 1)
        XCTAssertTrue(refused.failedShards.first?.reason.contains("shard-000000.safetensors") == true, refused.summary)
        XCTAssertTrue(refused.failedShards.first?.reason.contains("--x0 stored") == true, refused.summary)

        let r = try run(NoiseSpec(outputDir: dir + "/s", input: dir + "/enc", seed: 2, draws: 2, x0: .stored))
        XCTAssertTrue(r.succeeded, r.summary)
        let rows = try NoiseRows(dir + "/s")
        let diffusion = try GaussianDiffusion.create(respacing: nil, schedule: .linear)
        for i in 0..<3 {
            for k in 0..<2 {
                let row = try XCTUnwrap(rows.rows[[Int64(i), Int64(k)]])
                let expected = try diffusion.qSample(Tensor(shape: [1, 4, 8, 8], values: set.latent(i)), t: [Int(row.t)],
                                                     noise: Tensor(shape: [1, 4, 8, 8], values: row.eps))
                XCTAssertEqual(row.xT, expected.values)
            }
        }
    }

    /// With a DiT: each row's mse / vb / loss are `training_losses` of (x0, t, eps, y) computed
    /// directly; the report's bucket means are the means of those rows.
    func testLossesEqualTrainingLossesAndReportMeans() throws {
        let set = LatentSetBuilder()
        try set.write(to: dir + "/enc")
        let weights = try Fixtures.require("dit/tiny/weights.safetensors")
        let spec = NoiseSpec(outputDir: dir + "/n", input: dir + "/enc", seed: 5, draws: 2, dit: weights, buckets: 4, itemsPerShard: 2)
        let r = try run(spec, threads: 2)
        XCTAssertTrue(r.succeeded, r.summary)
        let rows = try NoiseRows(dir + "/n")
        let model = try DiT.load(path: weights, configFile: try Fixtures.require("dit/tiny/config.json"))
        let diffusion = try GaussianDiffusion.create(respacing: nil, learnSigma: true)
        var sums = [Double](repeating: 0, count: 4), counts = [Int](repeating: 0, count: 4)
        let previous = Threads.count
        Threads.set(1)
        defer { Threads.set(previous) }
        let draws = try NoiseDraws(seed: 5, numTimesteps: 1000)
        var x0s: [Float] = [], ts: [Int] = [], epss: [Float] = [], ys: [Int] = [], losses: [Float] = []
        for key in rows.order {
            let row = try XCTUnwrap(rows.rows[key])
            let i = Int(key[0]), k = Int(key[1])
            let x0 = Tensor(uninitialized: [1, 4, 8, 8])
            try set.mean(i).withUnsafeBufferPointer { m in
                try set.std(i).withUnsafeBufferPointer { s in
                    try draws.resampledX0(x0.data, mean: m.baseAddress!, std: s.baseAddress!, count: 256,
                                          scaling: LatentScaling(factor: 0.18215), item: i, draw: k)
                }
            }
            let terms = try diffusion.trainingLosses(xStart: x0, t: [Int(row.t)], noise: Tensor(shape: [1, 4, 8, 8], values: row.eps)) {
                try model.forward($0, t: $1, y: [Int(row.y)])
            }
            XCTAssertEqual(row.xT, terms.xT.values)
            XCTAssertEqual(row.mse, terms.mse?[0], "mse of \(key)")
            XCTAssertEqual(row.vb, terms.vb?[0], "vb of \(key)")
            XCTAssertEqual(row.loss, terms.loss[0], "loss of \(key)")
            sums[Int(row.t) * 4 / 1000] += Double(terms.loss[0]); counts[Int(row.t) * 4 / 1000] += 1
            x0s += x0.values; ts.append(Int(row.t)); epss += row.eps; ys.append(Int(row.y)); losses.append(terms.loss[0])
        }
        // One batched training_losses call agrees within the fixture tolerance (BLAS rounding differs by batch).
        let n = ts.count
        let batched = try diffusion.trainingLosses(xStart: Tensor(shape: [n, 4, 8, 8], values: x0s), t: ts,
                                                   noise: Tensor(shape: [n, 4, 8, 8], values: epss)) { try model.forward($0, t: $1, y: ys) }
        assertClose(Tensor(shape: [n], values: losses), Tensor(shape: [n], values: batched.loss), tol: 1e-4, "batched losses")

        let report = try NoiseLossReport.load(dir + "/n/losses.json")
        XCTAssertEqual(report.buckets.map(\.count), counts)
        XCTAssertEqual(report.overall.count, n)
        for b in 0..<4 where counts[b] > 0 {
            XCTAssertEqual(try XCTUnwrap(report.buckets[b].loss), sums[b] / Double(counts[b]), accuracy: 1e-12)
        }
        XCTAssertNotNil(report.overall.vb)
        XCTAssertEqual(report.buckets.map(\.tStart), [0, 250, 500, 750])
    }

    /// `--flip`: a fair coin keyed by (seed, item, draw) picks the flipped image's posterior.
    func testFlipDrawsTheFlippedPosterior() throws {
        try LatentSetBuilder(images: 4, imagesPerShard: 4, bad: []).write(to: dir + "/plain")
        let refused = try run(NoiseSpec(outputDir: dir + "/r", input: dir + "/plain", flip: true))
        XCTAssertTrue(refused.failedShards.first?.reason.contains("no flipped latents") == true, refused.summary)
        XCTAssertTrue(refused.failedShards.first?.reason.contains("shard-000000.safetensors") == true, refused.summary)

        let set = LatentSetBuilder(images: 4, imagesPerShard: 4, bad: [], flips: true)
        try set.write(to: dir + "/enc")
        for x0 in NoiseX0Source.allCases {
            let out = dir + "/n-\(x0.rawValue)"
            let r = try run(NoiseSpec(outputDir: out, input: dir + "/enc", seed: 4, draws: 4, x0: x0, flip: true))
            XCTAssertTrue(r.succeeded, r.summary)
            let rows = try NoiseRows(out)
            let draws = try NoiseDraws(seed: 4, numTimesteps: 1000)
            let diffusion = try GaussianDiffusion.create(respacing: nil)
            var coins: [Int64] = []
            for i in 0..<4 {
                for k in 0..<4 {
                    let row = try XCTUnwrap(rows.rows[[Int64(i), Int64(k)]])
                    let coin = try draws.flipped(item: i, draw: k)
                    XCTAssertEqual(row.flip, coin ? 1 : 0)
                    coins.append(row.flip ?? -1)
                    let source = coin ? i + 100 : i
                    let x0Values: [Float]
                    switch x0 {
                    case .stored: x0Values = set.latent(source)
                    case .resample:
                        let post = try PhiloxNoise(seed: 4).normal(index: i, shape: [256], purpose: .noisingPosterior, step: k).values
                        let m = set.mean(source), s = set.std(source)
                        x0Values = (0..<256).map { (m[$0] + s[$0] * post[$0]) * Float(0.18215) }
                    }
                    let expected = try diffusion.qSample(Tensor(shape: [1, 4, 8, 8], values: x0Values), t: [Int(row.t)],
                                                         noise: Tensor(shape: [1, 4, 8, 8], values: row.eps))
                    XCTAssertEqual(row.xT, expected.values, "\(x0) item \(i) draw \(k)")
                }
            }
            XCTAssertTrue(coins.contains(0) && coins.contains(1), "\(coins)")
        }
    }

    /// A label the DiT lacks and a non-finite latent are item errors with the image's path; the shard completes.
    func testBadItemsAreRecordedAndSkipped() throws {
        try LatentSetBuilder(images: 6, imagesPerShard: 6, bad: [], labelOf: { $0 == 2 ? 12 : 1 }, nan: [4]).write(to: dir + "/enc")
        let weights = try Fixtures.require("dit/tiny/weights.safetensors")
        let r = try run(NoiseSpec(outputDir: dir + "/n", input: dir + "/enc", draws: 2, dit: weights))
        XCTAssertTrue(r.succeeded, r.summary)
        XCTAssertEqual(r.itemErrors.map(\.item), [2, 4])
        XCTAssertEqual(r.itemErrors.map(\.path), ["img2.png", "img4.png"])
        XCTAssertTrue(r.itemErrors[0].reason.contains("label 12"), r.itemErrors[0].reason)
        XCTAssertTrue(r.itemErrors[1].reason.contains("non-finite"), r.itemErrors[1].reason)
        let rows = try NoiseRows(dir + "/n")
        XCTAssertEqual(rows.order.map { $0[0] }, [0, 0, 1, 1, 3, 3, 5, 5])
        XCTAssertTrue(rows.rows.values.allSatisfy { $0.loss?.isFinite == true })
        XCTAssertEqual(try NoiseLossReport.load(dir + "/n/losses.json").overall.count, 8)
    }

    /// A model whose loss is not finite (here: a NaN bias) gives one item error per image and an
    /// empty report, not a failed job.
    func testNonFiniteModelLossesAreItemErrors() throws {
        try LatentSetBuilder(images: 3, imagesPerShard: 3, bad: []).write(to: dir + "/enc")
        let source = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        var w = SafeTensorsWriter()
        for key in source.keys {
            let t = try source.tensor(key)
            if key == "final_layer.linear.bias" { t.data[0] = .nan }
            w.add(key, t)
        }
        try FileManager.default.createDirectory(atPath: dir + "/dit", withIntermediateDirectories: true)
        try w.write(to: dir + "/dit/weights.safetensors")
        try FileManager.default.copyItem(atPath: try Fixtures.require("dit/tiny/config.json"), toPath: dir + "/dit/config.json")
        let r = try run(NoiseSpec(outputDir: dir + "/n", input: dir + "/enc", draws: 2, dit: dir + "/dit/weights.safetensors"))
        XCTAssertTrue(r.succeeded, r.summary)
        XCTAssertEqual(r.itemErrors.map(\.item), [0, 1, 2])
        XCTAssertEqual(r.itemErrors.first?.path, "img0.png")
        XCTAssertTrue(r.itemErrors.allSatisfy { $0.reason.contains("not finite at draw(s) 0 (t ") && $0.reason.contains(", 1 (t ") },
                      r.summary)
        let report = try NoiseLossReport.load(dir + "/n/losses.json")
        XCTAssertEqual(report.overall.count, 0)
        XCTAssertNil(report.overall.loss)
    }

    /// An encode shard whose images all failed gives an empty noise shard (no model loaded).
    func testEmptyLatentShard() throws {
        try LatentSetBuilder(images: 6, imagesPerShard: 2, bad: [0, 1, 4, 5]).write(to: dir + "/enc")
        let weights = try Fixtures.require("dit/tiny/weights.safetensors")
        let r = try run(NoiseSpec(outputDir: dir + "/n", input: dir + "/enc", draws: 3, dit: weights))
        XCTAssertTrue(r.succeeded, r.summary)
        XCTAssertEqual(try SafeTensorsFile(path: dir + "/n/shards/shard-000000.safetensors").int64s("t"), [])
        XCTAssertEqual(try NoiseRows(dir + "/n").order.map { $0[0] }, [2, 2, 2, 3, 3, 3])
        let report = try NoiseLossReport.load(dir + "/n/losses.json")
        XCTAssertEqual(report.overall.count, 6)
        XCTAssertNotNil(report.overall.vb)
    }

    // MARK: bad input

    func testMissingOrCorruptManifestNamesTheFile() throws {
        XCTAssertThrowsError(try NoiseKind().plan(spec: try JobKinds.encode(NoiseSpec(outputDir: dir + "/o", input: dir + "/nothing")))) {
            XCTAssertTrue("\($0)".contains(self.dir + "/nothing"), "\($0)")
        }
        try FileManager.default.createDirectory(atPath: dir + "/enc", withIntermediateDirectories: true)
        try Data("{\"spec\": {".utf8).write(to: URL(fileURLWithPath: dir + "/enc/manifest.json"))
        XCTAssertThrowsError(try NoiseKind().plan(spec: try JobKinds.encode(NoiseSpec(outputDir: dir + "/o", input: dir + "/enc")))) {
            XCTAssertTrue("\($0)".contains(self.dir + "/enc/manifest.json"), "\($0)")
        }
        XCTAssertThrowsError(try NoiseKind().plan(spec: try JobKinds.encode(NoiseSpec(outputDir: dir + "/o", input: dir + "/enc", draws: 0))))
        try LatentSetBuilder().write(to: dir + "/ok")
        XCTAssertThrowsError(try NoiseKind().plan(spec: try JobKinds.encode(
            NoiseSpec(outputDir: dir + "/o", input: dir + "/ok", dit: dir + "/no-such-weights.safetensors")))) {
            XCTAssertTrue("\($0)".contains("no-such-weights"), "\($0)")
        }
    }

    /// A truncated, an altered and a missing latent shard each fail their own noise shards with
    /// a reason naming the file; the other shards are written.
    func testBadLatentShardsFailOnlyTheirShards() throws {
        let set = LatentSetBuilder(images: 12, imagesPerShard: 3, bad: [])
        try set.write(to: dir + "/enc")
        let s0 = dir + "/enc/shards/shard-000000.safetensors", s2 = dir + "/enc/shards/shard-000002.safetensors"
        let s3 = dir + "/enc/shards/shard-000003.safetensors"
        let full = try Data(contentsOf: URL(fileURLWithPath: s0))
        try full.prefix(full.count - 100).write(to: URL(fileURLWithPath: s0))
        var altered = try Data(contentsOf: URL(fileURLWithPath: s2))
        altered[altered.count - 5] ^= 0x40
        try altered.write(to: URL(fileURLWithPath: s2))
        try FileManager.default.removeItem(atPath: s3)

        let r = try run(NoiseSpec(outputDir: dir + "/n", input: dir + "/enc", itemsPerShard: 2))
        // 4 encode shards of 3 images at 2 per noise shard: 8 noise shards, 2 per encode shard.
        XCTAssertEqual(r.shards, 8)
        XCTAssertEqual(r.failedShards.map(\.index), [0, 1, 4, 5, 6, 7], r.summary)
        let reasons = Dictionary(uniqueKeysWithValues: r.failedShards.map { ($0.index, $0.reason) })
        XCTAssertTrue(reasons[0]?.contains(s0) == true && reasons[0]?.contains("truncated") == true, reasons[0] ?? "")
        XCTAssertTrue(reasons[4]?.contains(s2) == true && reasons[4]?.contains("SHA-256") == true, reasons[4] ?? "")
        XCTAssertTrue(reasons[6]?.contains(s3) == true && reasons[6]?.contains("missing") == true, reasons[6] ?? "")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/n/shards/shard-000002.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/n/shards/shard-000003.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/n/manifest.json"), "no manifest for a partial job")
        XCTAssertTrue(r.summary.contains("6 shard(s) failed"), r.summary)

        // Corrupt but checksum-consistent content (a manifest rewritten over a garbage shard) is still refused by format.
        try Data(repeating: 0xFF, count: 64).write(to: URL(fileURLWithPath: s3))
        var m = try EncodeManifest.load(dir + "/enc").manifest
        let (size, sha) = try SHA256.file(s3)
        m.shards[3] = FileDigest(path: m.shards[3].path, size: size, sha256: sha)
        try JobKinds.encode(m).write(to: URL(fileURLWithPath: dir + "/enc/manifest.json"))
        let again = try run(NoiseSpec(outputDir: dir + "/n2", input: dir + "/enc", itemsPerShard: 3))
        let bad3 = again.failedShards.first { $0.index == 3 }
        XCTAssertTrue(bad3?.reason.contains(s3) == true && bad3?.reason.contains("not a readable latent shard") == true,
                      again.summary)
    }
}
