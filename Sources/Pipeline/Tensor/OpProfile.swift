import Foundation

/// Optional per-operation timing (for `bench vae --profile`, `bench inception --profile`).
/// Off by default. Profiling is process-wide by nature (one report per process), so the
/// switch and the totals sit behind a lock: shards timing on several threads add up safely.
public enum OpProfile {
    private struct State {
        var enabled = false
        var totals: [String: (seconds: Double, calls: Int)] = [:]
    }
    private static let state = Locked(State())

    /// Whether `measure` records (set once by a command's `--profile`).
    public static var enabled: Bool {
        get { state.withLock { $0.enabled } }
        set { state.withLock { $0.enabled = newValue } }
    }

    @inline(__always)
    package static func measure<T>(_ name: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let key = name()
        state.withLock { st in
            let old = st.totals[key] ?? (0, 0)
            st.totals[key] = (old.seconds + s, old.calls + 1)
        }
        return r
    }

    public static func reset() { state.withLock { $0.totals = [:] } }

    /// (operation, seconds, calls), slowest first.
    public static var report: [(String, Double, Int)] {
        state.withLock { $0.totals }.map { ($0.key, $0.value.seconds, $0.value.calls) }.sorted { $0.1 > $1.1 }
    }
}

/// The VAE's name for it.
public typealias VAEProfile = OpProfile
