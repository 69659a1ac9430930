import Foundation
import PipelineFiles

public enum JobState: String, Codable, CaseIterable {
    case running, done
    case partiallyFailed = "partially_failed"
    case failed, cancelled
    public var isFinished: Bool { self != .running }
}

public enum ShardState: String, Codable, CaseIterable { case pending, leased, done, failed }

/// A shard as a planner proposes it: a half-open item range and a kind-defined spec.
public struct ShardPlan: Equatable {
    public var itemStart: Int
    public var itemEnd: Int
    public var spec: Data
    public init(itemStart: Int, itemEnd: Int, spec: Data = Data("{}".utf8)) {
        self.itemStart = itemStart; self.itemEnd = itemEnd; self.spec = spec
    }
    public var items: Int { itemEnd - itemStart }
}

/// What a planner makes of a job spec.
public struct JobPlan: Equatable {
    public var outputDir: String
    public var shards: [ShardPlan]
    public init(outputDir: String, shards: [ShardPlan]) { self.outputDir = outputDir; self.shards = shards }
    public var totalItems: Int { shards.reduce(0) { $0 + $1.items } }
}

/// A lease the ledger has recorded; the coordinator sends it to the worker as an ASSIGN.
public struct LeaseGrant: Equatable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var workerId: String
    public var expiresAt: Double
    public var task: ShardTask
}

/// The payload of an ASSIGN: everything a worker needs to run a shard.
public struct ShardTask: Codable, Equatable {
    public var kind: String
    public var jobId: Int64
    public var shardIndex: Int
    public var itemStart: Int
    public var itemEnd: Int
    public var outputDir: String
    public var jobSpec: Data
    public var shardSpec: Data
    public init(kind: String, jobId: Int64, shardIndex: Int, itemStart: Int, itemEnd: Int,
                outputDir: String, jobSpec: Data, shardSpec: Data) {
        self.kind = kind; self.jobId = jobId; self.shardIndex = shardIndex
        self.itemStart = itemStart; self.itemEnd = itemEnd; self.outputDir = outputDir
        self.jobSpec = jobSpec; self.shardSpec = shardSpec
    }
}

/// What a worker reports for a finished shard.
public struct ShardCompletion: Equatable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var outputs: [FileDigest]
    public var itemErrors: [ItemFailure]
    public var elapsed: Double
    /// Kind-defined figures (e.g. `model_seconds`), recorded with the attempt.
    public var metrics: [String: Double]
    public init(jobId: Int64, shardId: Int64, attempt: Int, outputs: [FileDigest],
                itemErrors: [ItemFailure] = [], elapsed: Double = 0, metrics: [String: Double] = [:]) {
        self.jobId = jobId; self.shardId = shardId; self.attempt = attempt
        self.outputs = outputs; self.itemErrors = itemErrors; self.elapsed = elapsed; self.metrics = metrics
    }
}

/// Why a report was not taken.
public enum ReportOutcome: Equatable {
    case accepted
    /// Does not match the current lease (late, duplicate, another worker's, cancelled job).
    case stale(String)
    /// Matched the lease but the outputs did not verify: the attempt counts as failed.
    case rejected(String)
    /// A failure report that sent the shard back to pending.
    case retrying
    /// A failure report that used up the shard's attempts.
    case shardFailed
}

/// A lease that ran out (or whose worker vanished).
public struct ExpiredLease: Equatable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var workerId: String
    public var shardFailed: Bool
}
