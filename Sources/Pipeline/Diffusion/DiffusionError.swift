/// Bad input to the diffusion code: a clear message naming what is wrong.
public enum DiffusionError: Error, CustomStringConvertible, Equatable {
    case invalidRespacing(String, reason: String)
    case invalidSchedule(String)
    case invalidArgument(String)
    case labelOutOfRange(label: Int, index: Int, numClasses: Int)
    case cfgScaleBelowOne(Float)
    case shapeMismatch(what: String, expected: [Int], found: [Int])
    case noiseUnavailable(String)
    case labelsFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidRespacing(s, reason): return "timestep respacing \"\(s)\": \(reason)"
        case let .invalidSchedule(s): return "unknown noise schedule \"\(s)\" (expected linear or squaredcos_cap_v2/cosine)"
        case let .invalidArgument(s): return s
        case let .labelOutOfRange(label, index, n):
            return "class label \(label) of sample \(index) is out of range 0..<\(n)"
        case let .cfgScaleBelowOne(s): return "classifier-free guidance scale \(s) is below 1 (1 means no guidance)"
        case let .shapeMismatch(what, expected, found): return "\(what): expected shape \(expected), found \(found)"
        case let .noiseUnavailable(s): return "noise source: \(s)"
        case let .labelsFile(path, reason): return "labels file \(path): \(reason)"
        }
    }
}
