import Foundation

/// A timestep respacing as ADM's `space_timesteps` reads it: `"250"` or
/// `"10,15,20"` (steps per equal section of the chain, fractional strides
/// rounded) or `"ddim50"` (the DDIM paper's fixed integer stride).
public enum Respacing: Equatable, CustomStringConvertible {
    case sections([Int])
    case ddim(Int)

    public init(parsing s: String) throws {
        let text = s.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw DiffusionError.invalidRespacing(s, reason: "empty (expected N, N1,N2,... or ddimN)") }
        if text.hasPrefix("ddim") {
            guard let n = Int(text.dropFirst(4)), n > 0 else {
                throw DiffusionError.invalidRespacing(s, reason: "expected ddimN with N a positive integer")
            }
            self = .ddim(n)
            return
        }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        var counts: [Int] = []
        for p in parts {
            guard let n = Int(p.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw DiffusionError.invalidRespacing(
                    s, reason: "expected N, N1,N2,... (non-negative step counts) or ddimN")
            }
            counts.append(n)
        }
        guard !counts.isEmpty, counts.contains(where: { $0 > 0 }) else {
            throw DiffusionError.invalidRespacing(s, reason: "no steps")
        }
        self = .sections(counts)
    }

    public var description: String {
        switch self {
        case let .sections(c): return c.map(String.init).joined(separator: ",")
        case let .ddim(n): return "ddim\(n)"
        }
    }

    /// The retained timesteps of a `numTimesteps` chain, ascending (the
    /// reference returns a set; `SpacedDiffusion` walks it in chain order).
    public func timesteps(of numTimesteps: Int) throws -> [Int] {
        switch self {
        case let .ddim(desired):
            for stride in 1..<max(numTimesteps, 1) {
                if (numTimesteps + stride - 1) / stride == desired {
                    return Array(Swift.stride(from: 0, to: numTimesteps, by: stride))
                }
            }
            throw DiffusionError.invalidRespacing(
                description, reason: "cannot take exactly \(desired) of \(numTimesteps) steps with an integer stride")
        case let .sections(counts):
            let sizePer = numTimesteps / counts.count
            let extra = numTimesteps % counts.count
            var start = 0
            var all = Set<Int>()
            for (i, count) in counts.enumerated() {
                let size = sizePer + (i < extra ? 1 : 0)
                guard size >= count else {
                    throw DiffusionError.invalidRespacing(
                        description, reason: "cannot divide a section of \(size) steps into \(count)")
                }
                let stride = count <= 1 ? 1.0 : Double(size - 1) / Double(count - 1)
                var cur = 0.0
                for _ in 0..<count {
                    // Python's round(): half to even.
                    all.insert(start + Int(cur.rounded(.toNearestOrEven)))
                    cur += stride
                }
                start += size
            }
            return all.sorted()
        }
    }
}
