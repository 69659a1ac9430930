import Foundation
import PipelineTensor
import PipelineFiles

/// The `synthetic` kind: deterministic files whose bytes depend only on (seed, item index).
/// It exercises the whole pipeline (leases, outputs, verification, finalize, item errors)
/// without models: the bench and the fault tests run on it.
public struct SyntheticSpec: Codable, Equatable {
    public var outputDir: String
    public var items: Int
    public var itemsPerShard: Int
    public var seed: UInt64
    /// Bytes written per item; each shard writes `synthetic/shard-NNNNNN.bin`.
    public var bytesPerItem: Int
    /// Simulated work per item, so shards take measurable time (fault tests kill mid-shard).
    public var millisPerItem: Double
    /// Items reported as per-item errors instead of written (the shard still completes).
    public var badItems: [Int]

    public init(outputDir: String, items: Int, itemsPerShard: Int, seed: UInt64 = 0, bytesPerItem: Int = 64,
                millisPerItem: Double = 0, badItems: [Int] = []) {
        self.outputDir = outputDir; self.items = items; self.itemsPerShard = itemsPerShard; self.seed = seed
        self.bytesPerItem = bytesPerItem; self.millisPerItem = millisPerItem; self.badItems = badItems
    }

    /// The bytes of one item: SplitMix64 seeded by (seed, item).
    public static func itemBytes(seed: UInt64, item: Int, count: Int) -> [UInt8] {
        var rng = SplitMix64(seed: seed &* SplitMix64.gamma ^ UInt64(item) &* 0xBF58_476D_1CE4_E5B9)
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            let z = rng.next()
            for b in 0..<8 where i + b < count { out[i + b] = UInt8(truncatingIfNeeded: z >> (8 * UInt64(b))) }
            i += 8
        }
        return out
    }
}

public struct SyntheticKind: JobKind {
    public init() {}
    public var name: String { "synthetic" }

    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(SyntheticSpec.self, spec, kind: name)
        guard s.items > 0 else { throw JobError.badSpec(kind: name, reason: "items must be > 0") }
        guard s.itemsPerShard > 0 else { throw JobError.badSpec(kind: name, reason: "items per shard must be > 0") }
        guard s.bytesPerItem >= 0, s.millisPerItem >= 0 else { throw JobError.badSpec(kind: name, reason: "negative size or time") }
        guard !s.outputDir.isEmpty else { throw JobError.badSpec(kind: name, reason: "no output folder") }
        return JobPlan(outputDir: s.outputDir, shards: JobKinds.ranges(items: s.items, perShard: s.itemsPerShard)
            .map { ShardPlan(itemStart: $0.lowerBound, itemEnd: $0.upperBound) })
    }

    /// Writes `synthetic/manifest.json`: every shard file with size and sha256, in path order.
    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] {
        let s = try JobKinds.decode(SyntheticSpec.self, spec, kind: name)
        guard s.bytesPerItem > 0 else { return [] }
        struct Manifest: Codable { var items: Int; var seed: UInt64; var files: [FileDigest] }
        let m = Manifest(items: s.items, seed: s.seed, files: shardOutputs.sorted { $0.path < $1.path })
        let data = try JobKinds.encode(m)
        return [try OutputFileWriter.write(data, to: outputDir + "/synthetic/manifest.json", relativeTo: outputDir)]
    }

    public func makeExecutor() -> ShardExecutor { SyntheticExecutor() }
}

final class SyntheticExecutor: ShardExecutor {
    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(SyntheticSpec.self, task.jobSpec, kind: "synthetic")
        let bad = Set(s.badItems)
        var errors: [ItemFailure] = []
        guard s.bytesPerItem > 0 else { return ShardReport(outputs: []) }
        let path = task.outputDir + "/" + SyntheticKind.shardFile(task.shardIndex)
        let w = try OutputFileWriter(path: path)
        do {
            for item in task.itemStart..<task.itemEnd {
                try control.checkpoint()
                if s.millisPerItem > 0 { usleep(UInt32(s.millisPerItem * 1000)) }
                if bad.contains(item) {
                    errors.append(ItemFailure(item: item, path: "item-\(item)", reason: "synthetic bad item"))
                    continue
                }
                let bytes = SyntheticSpec.itemBytes(seed: s.seed, item: item, count: s.bytesPerItem)
                try bytes.withUnsafeBytes { try w.write($0) }
            }
        } catch {
            w.abandon()
            throw error
        }
        return ShardReport(outputs: [try w.commit(relativeTo: task.outputDir)], itemErrors: errors)
    }
}

/// The `noop` kind: shards that do nothing and write nothing (the dispatch benchmark).
public struct NoopSpec: Codable, Equatable {
    public var outputDir: String
    public var items: Int
    public var itemsPerShard: Int
    public init(outputDir: String, items: Int, itemsPerShard: Int) {
        self.outputDir = outputDir; self.items = items; self.itemsPerShard = itemsPerShard
    }
}

public struct NoopKind: JobKind {
    public init() {}
    public var name: String { "noop" }
    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(NoopSpec.self, spec, kind: name)
        guard s.items > 0, s.itemsPerShard > 0 else { throw JobError.badSpec(kind: name, reason: "items and items per shard must be > 0") }
        return JobPlan(outputDir: s.outputDir, shards: JobKinds.ranges(items: s.items, perShard: s.itemsPerShard)
            .map { ShardPlan(itemStart: $0.lowerBound, itemEnd: $0.upperBound) })
    }
    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] { [] }
    public func makeExecutor() -> ShardExecutor { NoopExecutor() }
}

final class NoopExecutor: ShardExecutor {
    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport { ShardReport(outputs: []) }
}
