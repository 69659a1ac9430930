import Foundation
import PipelineFiles

/// What a shard execution produced.
public struct ShardReport: Equatable {
    public var outputs: [FileDigest]
    public var itemErrors: [ItemFailure]
    public var metrics: [String: Double]
    public init(outputs: [FileDigest], itemErrors: [ItemFailure] = [], metrics: [String: Double] = [:]) {
        self.outputs = outputs; self.itemErrors = itemErrors; self.metrics = metrics
    }
}

/// Passed to a running shard: thread budget and a stop flag the executor polls between
/// items (SIGTERM: abandon the shard).
public final class ShardControl: @unchecked Sendable {
    private let lock = NSLock()
    private var _stop = false
    public let threads: Int
    public init(threads: Int = 1) { self.threads = threads }
    public var shouldStop: Bool { lock.lock(); defer { lock.unlock() }; return _stop }
    public func requestStop() { lock.lock(); _stop = true; lock.unlock() }
    /// Throws `JobError.cancelled` once a stop was requested.
    public func checkpoint() throws { if shouldStop { throw JobError.cancelled } }
}

/// Worker side of a job kind. One executor lives for the worker's lifetime, so models it
/// loads stay loaded across shards.
public protocol ShardExecutor: AnyObject {
    /// Runs a shard. Per-item problems go into `itemErrors`; a thrown error fails the attempt.
    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport
    /// Models this executor holds (reported to the coordinator in READY).
    var cachedModels: [String] { get }
}

extension ShardExecutor { public var cachedModels: [String] { [] } }

/// A job kind: the coordinator-side planner and finalize step, and the worker-side executor.
public protocol JobKind {
    var name: String { get }
    /// Job spec (JSON) -> shards. Validates the spec; shards should take seconds to minutes.
    func plan(spec: Data) throws -> JobPlan
    /// Runs once, on the coordinator, after every shard is done; writes job-level outputs
    /// (atomically) and returns their digests, which the ledger records with the job's end.
    func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest]
    /// The files (relative to the job's output folder) shard `task` writes when the items in
    /// `failedItems` (its RESULT's item errors) were skipped. The coordinator accepts a RESULT
    /// only when it lists exactly these (ShardOutputs.swift).
    func expectedOutputs(of task: ShardTask, failedItems: Set<Int>) throws -> Set<String>
    func makeExecutor() -> ShardExecutor
}

/// The kinds this build knows, by name.
public enum JobKinds {
    public static var all: [JobKind] { [SampleKind(), EncodeKind(), NoiseKind(), FIDStatsKind(), SyntheticKind(), NoopKind()] }

    public static func named(_ name: String) throws -> JobKind {
        guard let k = all.first(where: { $0.name == name }) else { throw JobError.unknownKind(name) }
        return k
    }

    /// Splits `items` into shards of `perShard` items (the last may be shorter).
    public static func ranges(items: Int, perShard: Int) -> [Range<Int>] {
        guard items > 0, perShard > 0 else { return [] }
        return stride(from: 0, to: items, by: perShard).map { $0..<min($0 + perShard, items) }
    }

    /// Decodes a kind's spec, turning decoding errors into a `badSpec` naming the kind.
    public static func decode<T: Decodable>(_ type: T.Type, _ spec: Data, kind: String) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: spec) } catch {
            throw JobError.badSpec(kind: kind, reason: "\(error)")
        }
    }

    /// Canonical JSON for a spec (sorted keys) so equal specs compare equal in the ledger.
    public static func encode<T: Encodable>(_ spec: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(spec)
    }
}
