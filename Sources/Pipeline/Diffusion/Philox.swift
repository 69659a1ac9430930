/// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy
/// as 1, 2, 3", SC 2011): a counter-based generator. Each call maps a 128-bit
/// counter and a 64-bit key to 128 random bits with no state, so any value can be
/// computed on its own, in any order, on any machine. Checked against Random123's
/// published known-answer vectors (DiffusionNoiseTests).
public enum Philox4x32 {
    public typealias Counter = (UInt32, UInt32, UInt32, UInt32)
    public typealias Key = (UInt32, UInt32)

    static let multiplier0: UInt32 = 0xD251_1F53
    static let multiplier1: UInt32 = 0xCD9E_8D57
    static let weyl0: UInt32 = 0x9E37_79B9  // golden ratio
    static let weyl1: UInt32 = 0xBB67_AE85  // sqrt(3) - 1

    /// The 10-round bijection of `counter` under `key`.
    @inline(__always)
    public static func block(_ counter: Counter, key: Key) -> Counter {
        var c = counter
        var k = key
        for round in 0..<10 {
            let p0 = UInt64(multiplier0) &* UInt64(c.0)
            let p1 = UInt64(multiplier1) &* UInt64(c.2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            c = (hi1 ^ c.1 ^ k.0, lo1, hi0 ^ c.3 ^ k.1, lo0)
            if round < 9 { k = (k.0 &+ weyl0, k.1 &+ weyl1) }
        }
        return c
    }
}
