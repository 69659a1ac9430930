import Foundation
import PipelineFiles
import PipelineInception
import PipelineMetrics

/// The `fidstats` kind: `dit-worker fidstats` spread over workers. Shards of
/// `imagesPerShard` consecutive items (a multiple of `batch`, so every shard batches
/// its images exactly as the single process does) each write their partial float64
/// statistics, `<stem>.shards/shard-NNNNNN.npz` beside the output (`FIDStatsPartial`);
/// the finalize step merges them in shard order into the statistics .npz (`mu`,
/// `sigma`, `mu_s`, `sigma_s`) and its provenance JSON, written by the same code as
/// the single process (`FIDStatsJob.write`). Unreadable images are item errors in
/// the ledger (path, reason); the job completes without them.
public struct FIDStatsSpec: Codable, Equatable {
    /// The statistics .npz; its folder is the job's output folder.
    public var out: String
    public var source: FIDStatsSource
    public var inception: InceptionWeightsSpec
    public var mode: InceptionPreprocessing
    public var batch: Int
    public var embedImages: Bool
    public var imagesPerShard: Int

    public init(out: String, source: FIDStatsSource, inception: InceptionWeightsSpec, mode: InceptionPreprocessing = .pytorchFID,
                batch: Int = 50, embedImages: Bool = false, imagesPerShard: Int = 500) {
        self.out = out; self.source = source; self.inception = inception; self.mode = mode; self.batch = batch
        self.embedImages = embedImages; self.imagesPerShard = imagesPerShard
    }

    var outputDir: String { (out as NSString).deletingLastPathComponent }
    var statsName: String { (out as NSString).lastPathComponent }
    /// `STATS.npz` → `STATS.shards/shard-NNNNNN.npz` (relative to the output folder).
    func shardFile(_ index: Int) -> String {
        let stem = statsName.hasSuffix(".npz") ? String(statsName.dropLast(4)) : statsName
        return stem + ".shards/" + JobKinds.shardName(index) + ".npz"
    }

    var job: FIDStatsJob { FIDStatsJob(weights: inception, mode: mode, batch: batch, embedImages: embedImages) }
}

/// A shard's image files (relative to the source folder), fixed at planning time so
/// workers never rescan the folder; nil for an .npz source (rows itemStart..<itemEnd).
struct FIDStatsShardSpec: Codable {
    var paths: [String]?
}

public struct FIDStatsKind: JobKind {
    public init() {}
    public var name: String { "fidstats" }

    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(FIDStatsSpec.self, spec, kind: name)
        guard s.batch > 0, s.imagesPerShard > 0 else {
            throw JobError.badSpec(kind: name, reason: "batch and images per shard must be > 0")
        }
        guard s.imagesPerShard % s.batch == 0 else {
            throw JobError.badSpec(kind: name, reason: "images per shard (\(s.imagesPerShard)) must be a multiple of the batch (\(s.batch)), so that shards batch images as a single process does")
        }
        guard s.out.hasPrefix("/"), !s.statsName.isEmpty else {
            throw JobError.badSpec(kind: name, reason: "the statistics path must be absolute, got \(s.out)")
        }
        do { try s.job.checkEmbedding(s.source) } catch { throw JobError.badSpec(kind: name, reason: "\(error)") }
        let items: FIDStatsItems
        do { items = try s.source.items() } catch { throw JobError.badSpec(kind: name, reason: "\(error)") }
        guard items.count >= 2 else {
            throw JobError.badSpec(kind: name, reason: "\(s.source.path): statistics need at least 2 images, found \(items.count)")
        }
        let shards = try JobKinds.ranges(items: items.count, perShard: s.imagesPerShard).map { r -> ShardPlan in
            var sub = FIDStatsShardSpec()
            if case let .files(_, paths) = items { sub.paths = Array(paths[r]) }
            return ShardPlan(itemStart: r.lowerBound, itemEnd: r.upperBound, spec: try JobKinds.encode(sub))
        }
        return JobPlan(outputDir: s.outputDir, shards: shards)
    }

    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] {
        let s = try JobKinds.decode(FIDStatsSpec.self, spec, kind: name)
        let prefix = (s.shardFile(0) as NSString).deletingLastPathComponent + "/"
        let files = shardOutputs.map(\.path).filter { $0.hasPrefix(prefix) }.sorted()
        guard !files.isEmpty else { throw JobError.verification(path: outputDir + "/" + prefix, reason: "no shard statistics") }
        var merged = FIDStatsPartial()
        for f in files { try merged.merge(try FIDStatsPartial.read(outputDir + "/" + f)) }
        _ = try s.job.write(merged, source: s.source, out: s.out)
        return try [s.statsName, (StatisticsProvenance.path(forStatistics: s.out) as NSString).lastPathComponent].map { try FileDigest.of($0, under: outputDir) }
    }

    public func makeExecutor() -> ShardExecutor { FIDStatsExecutor() }
}

/// Worker side: keeps the Inception network loaded across shards (keyed by its weights spec).
final class FIDStatsExecutor: ShardExecutor {
    private let networks = ModelCache<FIDInceptionV3>()
    var cachedModels: [String] { [networks.key].compactMap { $0 } }

    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(FIDStatsSpec.self, task.jobSpec, kind: "fidstats")
        let shard = try JobKinds.decode(FIDStatsShardSpec.self, task.shardSpec, kind: "fidstats")
        let count = task.itemEnd - task.itemStart
        let key = "inception " + s.inception.description
        let network = try networks.model(key) { try s.inception.load() }
        let loadEnd = Date()
        var partial: FIDStatsPartial
        switch s.source {
        case .folder, .sampleOutput:
            guard let paths = shard.paths, paths.count == count else {
                throw JobError.badSpec(kind: "fidstats", reason: "shard \(task.shardIndex) lists \(shard.paths?.count ?? 0) images for \(count) items")
            }
            partial = try FIDStatsAccumulation.run(items: .files(root: s.source.path, paths: paths), range: 0..<count,
                                                   model: network, mode: s.mode, batch: s.batch, checkpoint: control.checkpoint)
            partial.failures = partial.failures.map {
                ItemFailure(item: task.itemStart + $0.item, path: $0.path, reason: $0.reason)
            }
        case let .npz(path):
            partial = try FIDStatsAccumulation.run(items: .rows(npz: path, count: task.itemEnd), range: task.itemStart..<task.itemEnd,
                                                   model: network, mode: s.mode, batch: s.batch, checkpoint: control.checkpoint)
        }
        let modelSeconds = Date().timeIntervalSince(loadEnd)
        let root = task.outputDir
        let rel = s.shardFile(task.shardIndex)
        try AtomicFileWriter.makeDirectory((root + "/" + rel as NSString).deletingLastPathComponent)
        do { try partial.write(to: root + "/" + rel) } catch { throw JobError.io(path: root + "/" + rel, reason: "\(error)") }
        return ShardReport(outputs: [try FileDigest.of(rel, under: root)], itemErrors: partial.failures,
                           metrics: ["model_seconds": modelSeconds])
    }
}
