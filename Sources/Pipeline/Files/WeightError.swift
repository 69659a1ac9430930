import Foundation

/// Errors from reading or matching weights. Each names the file and, where one is
/// involved, the tensor key.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case malformed(file: String, reason: String)
    case missingKey(file: String, key: String)
    case unexpectedKeys(file: String, keys: [String])
    case shapeMismatch(file: String, key: String, expected: [Int], found: [Int])
    case unsupportedDType(file: String, key: String, dtype: String)
    case forbiddenGlobal(file: String, name: String)

    public var description: String {
        switch self {
        case let .unreadable(f, r): return "\(f): cannot read: \(r)"
        case let .malformed(f, r): return "\(f): not a valid weights file: \(r)"
        case let .missingKey(f, k): return "\(f): missing tensor '\(k)'"
        case let .unexpectedKeys(f, ks):
            let shown = ks.prefix(8).joined(separator: "', '")
            return "\(f): unexpected tensor\(ks.count > 1 ? "s" : "") '\(shown)'\(ks.count > 8 ? " and \(ks.count - 8) more" : "")"
        case let .shapeMismatch(f, k, e, got): return "\(f): tensor '\(k)' has shape \(got), expected \(e)"
        case let .unsupportedDType(f, k, d): return "\(f): tensor '\(k)' has unsupported dtype \(d)"
        case let .forbiddenGlobal(f, n): return "\(f): pickle asks for global '\(n)', which is not on the allow-list"
        }
    }
}
