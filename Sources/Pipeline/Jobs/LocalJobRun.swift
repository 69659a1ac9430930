import Foundation
import PipelineFiles

/// A job run in this process, without a ledger (`dit-worker noise ...`): the kind's plan,
/// every shard through one `ShardRunner` in order, then its finalize step. It writes the
/// same files a coordinator and its workers write for the same spec. A shard that fails
/// is reported and the others still run; finalize runs only when every shard is done.
public enum LocalJobRun {
    public struct Result {
        public var shards: Int
        public var outputs: [FileDigest]
        /// Finalize's outputs (empty when a shard failed).
        public var finalOutputs: [FileDigest]
        public var itemErrors: [ItemFailure]
        public var failedShards: [(index: Int, reason: String)]
        public var items: Int
        public var seconds: Double

        public var succeeded: Bool { failedShards.isEmpty }

        public var summary: String {
            var lines = [String(format: "%d shard(s), %d item(s) in %.1f s; %d file(s) written", shards, items, seconds,
                                outputs.count + finalOutputs.count)]
            if !itemErrors.isEmpty {
                lines.append("item errors: \(itemErrors.count)")
                lines += itemErrors.prefix(20).map { "  item \($0.item) (\($0.path)): \($0.reason)" }
            }
            if !failedShards.isEmpty {
                lines.append("\(failedShards.count) shard(s) failed; nothing was finalized:")
                lines += failedShards.prefix(20).map { "  shard \($0.index): \($0.reason)" }
            }
            return lines.joined(separator: "\n")
        }
    }

    public static func run(kind name: String, spec: Data, threads: Int,
                           progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws -> Result {
        let start = Date()
        let kind = try JobKinds.named(name)
        let plan = try kind.plan(spec: spec)
        let runner = ShardRunner(threads: threads)
        var result = Result(shards: plan.shards.count, outputs: [], finalOutputs: [], itemErrors: [], failedShards: [],
                            items: plan.shards.reduce(0) { $0 + $1.itemEnd - $1.itemStart }, seconds: 0)
        for (i, shard) in plan.shards.enumerated() {
            let task = ShardTask(kind: name, jobId: 0, shardIndex: i, itemStart: shard.itemStart, itemEnd: shard.itemEnd,
                                 outputDir: plan.outputDir, jobSpec: spec, shardSpec: shard.spec)
            switch runner.run(task) {
            case let .done(report, _):
                result.outputs += report.outputs
                result.itemErrors += report.itemErrors
            case let .failed(reason, _):
                result.failedShards.append((i, reason))
            }
            progress(i + 1, plan.shards.count)
        }
        if result.succeeded {
            AtomicFileWriter.removeTemporaries(under: plan.outputDir)
            result.finalOutputs = try kind.finalize(spec: spec, outputDir: plan.outputDir, shardOutputs: result.outputs)
        }
        result.seconds = Date().timeIntervalSince(start)
        return result
    }
}
