import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineInception
@testable import PipelineMetrics
@testable import PipelineJobs

/// The `fidstats` kind through real processes, with the random-weights Inception
/// (each image costs one 299 px forward: keep the sets tiny).
final class JobsFIDStatsIntegrationTests: ProcessTestCase {
    func maxRelative(_ a: [Double], _ b: [Double]) -> Double {
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max()! / max(scale, 1e-300)
    }

    /// One and two workers give byte-identical statistics; they equal `dit-worker fidstats`
    /// (one process) to 1e-12; a corrupt image is an item error and the rest is done.
    func testWorkersAgreeWithSingleProcessAndCorruptImageIsRecorded() throws {
        let folder = dir + "/images"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (i, img) in try FIDTestImages.images(count: 4, size: 16, seed: 11).enumerated() {
            try PNGWriter.write(img, to: folder + "/img\(i < 2 ? i : i + 1).png")
        }
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: folder + "/img2.png"))   // item 2
        let common = ["--inception", "random:0", "--images", folder, "--batch", "2"]

        var outputs: [[String: Data]] = []
        for workers in [1, 2] {
            let out = dir + "/w\(workers)/stats.npz", ledger = dir + "/l\(workers).sqlite"
            // serve + workers rather than `run`: debug builds on a loaded machine hash the
            // shard files slowly enough to miss 3 s heartbeat windows, so the windows are wide.
            let (submitted, log) = try runToEnd("dit-coordinator", ["submit", "fidstats"] + common + [
                "--out", out, "--images-per-shard", "2", "--ledger", ledger])
            XCTAssertEqual(submitted, 0, log)
            let port = try freePort()
            let hb = ["--heartbeat", "1", "--liveness", "120"]
            let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://127.0.0.1:\(port)",
                                                            "--exit-when-done"] + hb)
            for _ in 0..<workers { try start("dit-worker", ["--connect", "tcp://127.0.0.1:\(port)", "--threads", "1"] + hb) }
            try waitFor("the fidstats job with \(workers) worker(s)", timeout: 1200) { !coordinator.isRunning }
            let l = try Ledger(path: ledger)
            XCTAssertEqual(try l.jobState(1), .done)
            try assertExactlyOnce(ledger)
            let errors = try Ledger(path: ledger).itemErrors(jobId: 1)
            XCTAssertEqual(errors.map(\.item), [2])
            XCTAssertEqual(errors.map(\.path), ["img2.png"])
            var files = try tree(dir + "/w\(workers)")
            let prov = try StatisticsProvenance.read(besideStatistics: out)
            XCTAssertEqual(prov.imageCount, 4)
            XCTAssertEqual(prov.skippedImages, 1)
            XCTAssertEqual(prov.weightsFile, "random:0")
            XCTAssertNil(prov.weightsSHA256)
            XCTAssertEqual(prov.source, folder)
            files["stats.provenance.json"] = nil   // holds its creation time
            outputs.append(files)
        }
        XCTAssertEqual(Set(outputs[0].keys), ["stats.npz", "stats.shards/shard-000000.npz", "stats.shards/shard-000001.npz",
                                              "stats.shards/shard-000002.npz"])
        XCTAssertEqual(outputs[0], outputs[1], "1 and 2 workers differ")

        // The single-process command on the same folder.
        let (status, log) = try runToEnd("dit-worker", ["fidstats"] + common + ["--out", dir + "/single.npz", "--threads", "1"],
                                         timeout: 600)
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("skipped"), log)
        let single = try StatisticsFile.read(dir + "/single.npz"), job = try StatisticsFile.read(dir + "/w1/stats.npz")
        XCTAssertLessThan(maxRelative(job.pool!.mu, single.pool!.mu), 1e-12)
        XCTAssertLessThan(maxRelative(job.pool!.sigma, single.pool!.sigma), 1e-12)
        XCTAssertLessThan(maxRelative(job.spatial!.mu, single.spatial!.mu), 1e-12)
        XCTAssertLessThan(maxRelative(job.spatial!.sigma, single.spatial!.sigma), 1e-12)
        XCTAssertEqual(try StatisticsProvenance.read(besideStatistics: dir + "/single.npz").skippedImages, 1)
        // The features are not degenerate: the statistics have spread.
        XCTAssertGreaterThan(single.pool!.sigma.map(abs).max()!, 0)
    }

    /// An .npz source: shards start mid-array (rows skipped), and the merged statistics
    /// equal the single-process run's; `--embed-images` copies arr_0 (in-process, one model).
    func testNPZShardsMergeToSingleProcess() throws {
        let n = 3
        try NPZWriter.write([("arr_0", NPYArray(uint8: FIDTestImages.pixels(count: n, size: 12, seed: 5), shape: [n, 12, 12, 3]))],
                            to: dir + "/batch.npz", compressed: true)
        let model = try InceptionWeightsSpec.random(seed: 2).load()
        let single = try FIDStatsJob(weights: .random(seed: 2), batch: 1).run(npz: dir + "/batch.npz", out: dir + "/single.npz", model: model)

        let spec = FIDStatsSpec(out: dir + "/job/stats.npz", source: .npz(path: dir + "/batch.npz"), inception: .random(seed: 2),
                                batch: 1, embedImages: true, imagesPerShard: 1)
        let data = try JobKinds.encode(spec)
        let plan = try FIDStatsKind().plan(spec: data)
        XCTAssertEqual(plan.shards.map(\.itemStart), [0, 1, 2])
        XCTAssertEqual(plan.outputDir, dir + "/job")
        var outs: [FileDigest] = []
        var partials: [FIDStatsPartial] = []
        let executor = FIDStatsKind().makeExecutor()
        for (i, s) in plan.shards.enumerated() {
            let task = ShardTask(kind: "fidstats", jobId: 1, shardIndex: i, itemStart: s.itemStart, itemEnd: s.itemEnd,
                                 outputDir: plan.outputDir, jobSpec: data, shardSpec: s.spec)
            let report = try executor.execute(task, control: ShardControl())
            XCTAssertEqual(report.outputs.map(\.path), [spec.shardFile(i)])
            XCTAssertEqual(report.itemErrors, [])
            partials.append(try FIDStatsPartial.read(plan.outputDir + "/" + spec.shardFile(i)))
            outs += report.outputs
        }
        XCTAssertEqual(executor.cachedModels, ["inception random:2"])
        XCTAssertEqual(partials.map(\.pool.count), [1, 1, 1])
        let final = try FIDStatsKind().finalize(spec: data, outputDir: plan.outputDir, shardOutputs: outs.reversed())
        XCTAssertEqual(final.map(\.path), ["stats.npz", "stats.provenance.json"])
        let job = try StatisticsFile.read(dir + "/job/stats.npz")
        XCTAssertEqual(job.imagesShape, [n, 12, 12, 3])
        let s = try single.pool.gaussian(), ss = try single.spatial.gaussian()
        XCTAssertLessThan(maxRelative(job.pool!.mu, s.mu), 1e-12)
        XCTAssertLessThan(maxRelative(job.pool!.sigma, s.sigma), 1e-12)
        XCTAssertLessThan(maxRelative(job.spatial!.sigma, ss.sigma), 1e-12)
    }

    /// Planning: shard sizes must be multiples of the batch; sample-job folders list their
    /// PNGs by index and bring their recipe; an unfinished sample job is refused.
    func testPlanningAndSources() throws {
        let folder = dir + "/samples"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let imgs = try FIDTestImages.images(count: 3, size: 8, seed: 1)
        for (i, img) in imgs.enumerated() { try PNGWriter.write(img, to: folder + String(format: "/%06d.png", i)) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: folder + "/labels.npy"))
        try Data(#"{"kind":"sample","spec":{"numSamples":3,"sampler":"ddim","cfgScale":1.5,"guideAllChannels":false,"config":null}}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/samples_3x8x8x3.json"))
        let src = FIDStatsSource.sampleOutput(path: folder)
        XCTAssertEqual(try src.items(), .files(root: folder, paths: ["000000.png", "000001.png", "000002.png"]))
        let recipe = try src.samplingRecipe()
        XCTAssertEqual(recipe?["sampler"], "ddim")
        XCTAssertEqual(recipe?["numSamples"], "3")
        XCTAssertEqual(recipe?["cfgScale"], "1.5")
        XCTAssertEqual(recipe?["guideAllChannels"], "false")
        XCTAssertNil(recipe?["config"])
        try FileManager.default.removeItem(atPath: folder + "/000002.png")
        XCTAssertThrowsError(try src.items()) { XCTAssertTrue("\($0)".contains("3 samples"), "\($0)") }

        // Recursive listing: sub-folders, hidden entries skipped, sorted by relative path.
        let tree = dir + "/tree"
        try FileManager.default.createDirectory(atPath: tree + "/b/c", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tree + "/.hidden", withIntermediateDirectories: true)
        for p in ["z.png", "b/a.png", "b/c/d.jpg", ".hidden/x.png", "b/notes.txt"] {
            try Data().write(to: URL(fileURLWithPath: tree + "/" + p))
        }
        XCTAssertEqual(try FIDStatsSource.imageFiles(in: tree, recursive: true), ["b/a.png", "b/c/d.jpg", "z.png"])
        XCTAssertEqual(try FIDStatsSource.imageFiles(in: tree, recursive: false), ["z.png"])

        let spec = FIDStatsSpec(out: dir + "/s.npz", source: .folder(path: tree, recursive: true), inception: .random(seed: 0),
                                batch: 2, imagesPerShard: 3)
        XCTAssertThrowsError(try FIDStatsKind().plan(spec: try JobKinds.encode(spec))) { XCTAssertTrue("\($0)".contains("multiple"), "\($0)") }
        var ok = spec
        ok.imagesPerShard = 2
        let plan = try FIDStatsKind().plan(spec: try JobKinds.encode(ok))
        XCTAssertEqual(plan.shards.map(\.itemEnd), [2, 3])
        var embed = ok
        embed.embedImages = true
        XCTAssertThrowsError(try FIDStatsKind().plan(spec: try JobKinds.encode(embed)))

        // Skipping rows of stored and deflated members.
        let rows = (0..<10).flatMap { r in [UInt8](repeating: UInt8(r), count: 6) }
        for compressed in [false, true] {
            try NPZWriter.write([("arr_0", NPYArray(uint8: rows, shape: [10, 1, 2, 3]))], to: dir + "/r.npz", compressed: compressed)
            var it = try NPZFile(path: dir + "/r.npz").rows("arr_0", batch: 4)
            try it.skip(rows: 3)
            let b = try it.next(maxRows: 2)!
            XCTAssertEqual(b.shape, [2, 1, 2, 3])
            XCTAssertEqual(Array(b.data), [UInt8](repeating: 3, count: 6) + [UInt8](repeating: 4, count: 6))
            XCTAssertEqual(try it.next()!.shape[0], 4)
        }
    }
}
