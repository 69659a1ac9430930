import Foundation

/// Optional per-operation timing (for `bench vae --profile`, `bench inception --profile`).
/// Off by default; the models run their layers one after another, so a plain accumulator suffices.
public enum OpProfile {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var totals: [String: (seconds: Double, calls: Int)] = [:]

    @inline(__always)
    package static func measure<T>(_ name: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let key = name()
        let old = totals[key] ?? (0, 0)
        totals[key] = (old.seconds + s, old.calls + 1)
        return r
    }

    public static func reset() { totals = [:] }

    /// (operation, seconds, calls), slowest first.
    public static var report: [(String, Double, Int)] {
        totals.map { ($0.key, $0.value.seconds, $0.value.calls) }.sorted { $0.1 > $1.1 }
    }
}

/// The VAE's name for it.
public typealias VAEProfile = OpProfile
