import Foundation
import PipelineFiles

// What each kind's shards write, derived from the job spec and the shard alone: the
// executors name their files with these, and the coordinator accepts a RESULT only when it
// lists exactly these files (`OutputVerifier.checkNames`).

extension SyntheticKind {
    /// `synthetic/shard-NNNNNN.bin` (none when items have no bytes).
    static func shardFile(_ index: Int) -> String { "synthetic/" + JobKinds.shardName(index) + ".bin" }

    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> {
        let s = try JobKinds.decode(SyntheticSpec.self, task.jobSpec, kind: name)
        return s.bytesPerItem > 0 ? [Self.shardFile(task.shardIndex)] : []
    }
}

extension NoopKind {
    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> { [] }
}

extension SampleKind {
    /// With a VAE: a PNG per sample and the shard's labels; without: labels and latents.
    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> {
        let s = try JobKinds.decode(SampleSpec.self, task.jobSpec, kind: name)
        var names: Set<String> = [SampleLayout.labels(task.shardIndex)]
        if s.vae != nil {
            for i in task.itemStart..<max(task.itemStart, task.itemEnd) { names.insert(SampleLayout.png(i)) }
        } else {
            names.insert(SampleLayout.latents(task.shardIndex))
        }
        return names
    }
}

extension EncodeKind {
    /// The shard's safetensors; with `--layout fast-dit` also each encoded image's
    /// `features/{i}.npy` and `labels/{i}.npy` (images that failed to decode have none).
    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> {
        let s = try JobKinds.decode(EncodeSpec.self, task.jobSpec, kind: name)
        var names: Set<String> = [EncodeManifest.shardPath(task.shardIndex)]
        if s.fastDiTLayout {
            for i in task.itemStart..<max(task.itemStart, task.itemEnd) where !failedItems.contains(i) {
                names.insert(EncodeLayout.features(i))
                names.insert(EncodeLayout.labels(i))
            }
        }
        return names
    }
}

enum EncodeLayout {
    static func features(_ item: Int) -> String { "features/\(item).npy" }
    static func labels(_ item: Int) -> String { "labels/\(item).npy" }
}

extension NoiseKind {
    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> {
        [EncodeManifest.shardPath(task.shardIndex)]
    }
}

extension FIDStatsKind {
    public func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String> {
        [try JobKinds.decode(FIDStatsSpec.self, task.jobSpec, kind: name).shardFile(task.shardIndex)]
    }
}

extension JobKinds {
    /// `shard-NNNNNN`, the stem every kind names a shard's files with.
    static func shardName(_ index: Int) -> String { String(format: "shard-%06d", index) }
}
