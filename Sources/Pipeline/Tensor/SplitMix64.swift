import Foundation

/// SplitMix64: a small, fast, well-mixed deterministic generator for random
/// weights, procedural data and test inputs. (Diffusion noise comes from the
/// counter-based noise protocol instead.)
public struct SplitMix64 {
    public static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The SplitMix64 finaliser: a bijective avalanche of `z`.
    @inline(__always)
    public static func mix(_ z: UInt64) -> UInt64 {
        var z = z
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= Self.gamma
        return Self.mix(state)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func unitFloat() -> Float { Float(next() >> 40) * (1 / Float(1 << 24)) }

    /// A tensor of uniform values in [-bound, bound). Filled in parallel from
    /// per-chunk streams derived from one draw, so the result depends only on the seed.
    public mutating func uniform(_ shape: [Int], bound: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let base = next()
        let p = t.data
        let chunk = 1 << 16
        let n = t.count
        parallelFor((n + chunk - 1) / chunk, grain: 1) { s, e in
            for c in s..<e {
                var g = SplitMix64(seed: base ^ (UInt64(c) &* 0xD1B5_4A32_D192_ED03))
                for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                    p[i] = (2 * g.unitFloat() - 1) * bound
                }
            }
        }
        return t
    }
}
