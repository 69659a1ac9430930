import Foundation

/// Errors of the job system: ledger, planning, shard execution. Each names what and where.
public enum JobError: Error, CustomStringConvertible, Equatable {
    case io(path: String, reason: String)
    case badSpec(kind: String, reason: String)
    case unknownKind(String)
    case unknownJob(Int64)
    case ledger(String)
    case verification(path: String, reason: String)
    /// An input file that is there but wrong (checksum, format, shapes): retrying cannot help.
    case badInput(path: String, reason: String)
    case cancelled

    public var description: String {
        switch self {
        case .io(let path, let reason): return "\(path): \(reason)"
        case .badSpec(let kind, let reason): return "bad \(kind) job spec: \(reason)"
        case .unknownKind(let k): return "unknown job kind '\(k)'"
        case .unknownJob(let id): return "no job \(id) in the ledger"
        case .ledger(let m): return "ledger: \(m)"
        case .verification(let path, let reason): return "output \(path) does not verify: \(reason)"
        case .badInput(let path, let reason): return "input \(path): \(reason)"
        case .cancelled: return "shard abandoned (worker stopping)"
        }
    }
}
