import Foundation

// DITP/1 revision 4: CONTROL and CONTROL_REPLY, so `dit-coordinator submit|status|cancel|retry`
// on any host reach the ledger through the one coordinator that holds it, instead of opening
// the SQLite file (which must stay on one host: see LedgerLock). A control client is a
// DEALER like a worker, admitted the same way (CURVE with the allow-list when the coordinator
// runs CURVE); it sends no READY and gets no heartbeats: one CONTROL, one CONTROL_REPLY.

/// CONTROL (client -> coordinator): one ledger command.
public struct ControlRequest: Codable, Equatable, Sendable {
    public enum Operation: String, Codable, Sendable {
        case submit, status, cancel, retry
    }

    /// Echoed in the reply, so a client matches the reply to its request.
    public var requestId: String
    public var operation: Operation
    /// cancel, retry; status (nil: every job).
    public var jobId: Int64?
    /// submit: the job kind and its spec (JSON, as `submit KIND` builds it on the client).
    public var kind: String?
    public var spec: String?
    public var maxAttempts: Int?
    public var leaseSeconds: Double?
    /// submit: add a new job even when the same spec is already in the ledger.
    public var fresh: Bool?
    /// status: item errors listed per job.
    public var maxItemErrors: Int?
    /// status: the JSON document of `/api/jobs` instead of the text report.
    public var json: Bool?

    public init(requestId: String = UUID().uuidString, operation: Operation, jobId: Int64? = nil, kind: String? = nil,
                spec: String? = nil, maxAttempts: Int? = nil, leaseSeconds: Double? = nil, fresh: Bool? = nil,
                maxItemErrors: Int? = nil, json: Bool? = nil) {
        self.requestId = requestId
        self.operation = operation
        self.jobId = jobId
        self.kind = kind
        self.spec = spec
        self.maxAttempts = maxAttempts
        self.leaseSeconds = leaseSeconds
        self.fresh = fresh
        self.maxItemErrors = maxItemErrors
        self.json = json
    }
}

/// CONTROL_REPLY (coordinator -> client): what the command printed, or why it failed.
public struct ControlReply: Codable, Equatable, Sendable {
    public var requestId: String
    /// nil on success; else the error, as the command would have printed it.
    public var error: String?
    /// The command's output (status: the report; submit: the job id).
    public var output: String
    /// Extra lines for standard error (submit: "same job already in the ledger").
    public var notice: String?
    /// submit: the job and whether it was already in the ledger.
    public var jobId: Int64?
    public var resumed: Bool?

    public init(requestId: String, error: String? = nil, output: String = "", notice: String? = nil, jobId: Int64? = nil,
                resumed: Bool? = nil) {
        self.requestId = requestId
        self.error = error
        self.output = output
        self.notice = notice
        self.jobId = jobId
        self.resumed = resumed
    }
}
