import Foundation

/// The 64-bit linear congruential generator with Knuth's MMIX constants,
/// state ← state·6364136223846793005 + 1442695040888963407 (mod 2⁶⁴): the stream of the
/// random Inception weights. Any position of the stream can be reached directly (`skip`).
public struct LCG64 {
    public static let multiplier: UInt64 = 6_364_136_223_846_793_005
    public static let increment: UInt64 = 1_442_695_040_888_963_407
    public private(set) var state: UInt64

    public init(state: UInt64) { self.state = state }

    /// The next state (the generator's output is its state).
    @inline(__always)
    public mutating func next() -> UInt64 {
        state = state &* Self.multiplier &+ Self.increment
        return state
    }

    /// Moves the stream on by `n` values, as `n` calls of `next` would, in O(log n) steps
    /// (F. Brown, "Random number generation with arbitrary strides", 1994): the affine map
    /// x ↦ a·x + c composed with itself n times, by squaring.
    public mutating func skip(_ n: Int) {
        precondition(n >= 0, "LCG64.skip: negative stride \(n)")
        var mult = Self.multiplier, plus = Self.increment
        var accMult: UInt64 = 1, accPlus: UInt64 = 0
        var k = UInt64(n)
        while k > 0 {
            if k & 1 == 1 {
                accMult = accMult &* mult
                accPlus = accPlus &* mult &+ plus
            }
            plus = (mult &+ 1) &* plus
            mult = mult &* mult
            k >>= 1
        }
        state = accMult &* state &+ accPlus
    }
}
