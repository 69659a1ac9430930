import Foundation

// The DITP/1 payloads. Every body is JSON (see `WireCodec` for the frames).

/// READY: who the worker is and what it can do.
public struct WorkerHello: Codable, Equatable, Sendable {
    public var workerId: String
    public var hostname: String
    public var pid: Int32
    public var threads: Int
    public var capabilities: [String]
    public var cachedModels: [String]
    /// The DITP/1 revision the worker speaks (`WireCodec.revision`); absent (nil) in
    /// revision 1, whose workers neither expect nor understand ACK.
    public var revision: Int?
    /// Revision 3: a random token drawn once per worker process (never logged, never sent
    /// back). With the CURVE key where CURVE is on, it is what the worker id is bound to:
    /// a READY claiming a connected worker's id with another credential is refused.
    public var session: String?
    /// Revision 3: this process's connection number (1, 2, ... per reconnect), so a READY
    /// from an older connection that arrives late never displaces a newer one.
    public var connection: Int?
    /// Revision 3: the leases the worker holds as it says READY (queued, running, or reported
    /// and not yet acknowledged). The coordinator releases at once any other lease it had
    /// given this worker: its ASSIGN went to a connection the worker had already left.
    public var holding: [LeaseRef]?

    public init(workerId: String, hostname: String, pid: Int32, threads: Int,
                capabilities: [String] = [], cachedModels: [String] = [], revision: Int? = WireCodec.revision,
                session: String? = nil, connection: Int? = nil, holding: [LeaseRef]? = nil) {
        self.workerId = workerId
        self.hostname = hostname
        self.pid = pid
        self.threads = threads
        self.capabilities = capabilities
        self.cachedModels = cachedModels
        self.revision = revision
        self.session = session
        self.connection = connection
        self.holding = holding
    }

    /// True when the worker keeps RESULT/FAILED until the coordinator acknowledges them.
    public var expectsAcknowledgements: Bool { (revision ?? 1) >= 2 }
}

/// One lease as READY lists it (revision 3): (job, shard, attempt).
public struct LeaseRef: Codable, Hashable, Sendable, CustomStringConvertible {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public init(jobId: Int64, shardId: Int64, attempt: Int) {
        self.jobId = jobId
        self.shardId = shardId
        self.attempt = attempt
    }
    public var description: String { "job \(jobId) shard \(shardId) attempt \(attempt)" }
}

/// ASSIGN: one shard lease. `payload` is the jobs layer's JSON shard spec.
public struct Assignment: Codable, Equatable, Sendable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var kind: String
    public var payload: Data

    public init(jobId: Int64, shardId: Int64, attempt: Int, kind: String, payload: Data) {
        self.jobId = jobId
        self.shardId = shardId
        self.attempt = attempt
        self.kind = kind
        self.payload = payload
    }
}

/// One output file a shard wrote (after fsync + rename).
public struct OutputRecord: Codable, Equatable, Sendable {
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(path: String, size: Int64, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// One bad input item inside an otherwise successful shard.
public struct ItemError: Codable, Equatable, Sendable {
    public var item: Int
    public var path: String
    public var reason: String

    public init(item: Int, path: String, reason: String) {
        self.item = item
        self.path = path
        self.reason = reason
    }
}

/// RESULT: a finished shard.
public struct ShardResult: Codable, Equatable, Sendable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var outputs: [OutputRecord]
    public var itemErrors: [ItemError]
    public var metrics: [String: Double]

    public init(jobId: Int64, shardId: Int64, attempt: Int, outputs: [OutputRecord],
                itemErrors: [ItemError] = [], metrics: [String: Double] = [:]) {
        self.jobId = jobId
        self.shardId = shardId
        self.attempt = attempt
        self.outputs = outputs
        self.itemErrors = itemErrors
        self.metrics = metrics
    }
}

/// FAILED: a shard that did not finish.
public struct ShardFailure: Codable, Equatable, Sendable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    public var reason: String
    public var retryable: Bool

    public init(jobId: Int64, shardId: Int64, attempt: Int, reason: String, retryable: Bool) {
        self.jobId = jobId
        self.shardId = shardId
        self.attempt = attempt
        self.reason = reason
        self.retryable = retryable
    }
}

/// ACK: the coordinator has durably dealt with a RESULT or FAILED (recorded it, or found it
/// a duplicate or stale); the worker may forget it. Until then the worker keeps it and
/// sends it again after every reconnect and every `resendInterval`.
public struct Acknowledgement: Codable, Equatable, Sendable {
    public var jobId: Int64
    public var shardId: Int64
    public var attempt: Int
    /// What the coordinator made of the report (for the worker's log).
    public var verdict: AckVerdict

    public init(jobId: Int64, shardId: Int64, attempt: Int, verdict: AckVerdict) {
        self.jobId = jobId
        self.shardId = shardId
        self.attempt = attempt
        self.verdict = verdict
    }
}

public enum AckVerdict: String, Codable, Equatable, Sendable {
    /// Recorded now (RESULT accepted, or FAILED recorded).
    case recorded
    /// This attempt was already recorded done (a re-sent RESULT): nothing counted twice.
    case duplicate
    /// No longer the shard's current lease (expired, released, re-assigned, job ended): ignored.
    case stale
    /// Matched the lease but its outputs did not verify: recorded as a failed attempt.
    case rejected
}

/// One DITP/1 message.
public enum WireMessage: Equatable, Sendable {
    /// worker -> coordinator, first message on every connection.
    case ready(WorkerHello)
    /// worker -> coordinator: room for `credits` more assignments.
    case request(credits: Int)
    /// coordinator -> worker.
    case assign(Assignment)
    /// both ways, every heartbeat interval.
    case heartbeat
    /// worker -> coordinator.
    case result(ShardResult)
    /// worker -> coordinator.
    case failed(ShardFailure)
    /// both ways: the sender is leaving (worker) or dismisses the worker (coordinator).
    case disconnect
    /// coordinator -> worker (revision 2): a RESULT/FAILED is durably dealt with.
    case ack(Acknowledgement)

    public var command: WireCommand {
        switch self {
        case .ready: return .ready
        case .request: return .request
        case .assign: return .assign
        case .heartbeat: return .heartbeat
        case .result: return .result
        case .failed: return .failed
        case .disconnect: return .disconnect
        case .ack: return .ack
        }
    }
}

/// The command byte (third frame after the delimiter and version).
public enum WireCommand: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case ready = 0x01, request = 0x02, assign = 0x03, heartbeat = 0x04
    case result = 0x05, failed = 0x06, disconnect = 0x07, ack = 0x08

    public var description: String {
        switch self {
        case .ready: return "READY"
        case .request: return "REQUEST"
        case .assign: return "ASSIGN"
        case .heartbeat: return "HEARTBEAT"
        case .result: return "RESULT"
        case .failed: return "FAILED"
        case .disconnect: return "DISCONNECT"
        case .ack: return "ACK"
        }
    }

    /// Commands a worker may send to the coordinator.
    public var sentByWorker: Bool { self != .assign && self != .ack }
    /// Commands the coordinator may send to a worker.
    public var sentByCoordinator: Bool { self == .assign || self == .heartbeat || self == .disconnect || self == .ack }
}

/// ROUTER identity of one worker connection (a reconnecting worker gets a new one).
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public var description: String { bytes.map { String(format: "%02x", $0) }.joined() }
}
