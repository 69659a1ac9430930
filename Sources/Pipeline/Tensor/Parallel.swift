import Foundation
import COpenBLAS

/// Thread settings shared by BLAS and the elementwise kernels.
public enum Threads {
    nonisolated(unsafe) private static var _count: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Number of threads for BLAS and for `parallelFor`.
    public static var count: Int { _count }

    /// Sets the thread count for OpenBLAS and the elementwise kernels.
    public static func set(_ n: Int) {
        _count = max(1, n)
        openblas_set_num_threads(Int32(_count))
    }
}

/// Runs `body(start, end)` over `0..<n` split into contiguous chunks, one per
/// thread, when the work is large enough (`grain` items per chunk at least).
@inline(__always)
public func parallelFor(_ n: Int, grain: Int = 4096, _ body: (Int, Int) -> Void) {
    let threads = min(Threads.count, max(1, n / max(grain, 1)))
    if threads <= 1 {
        if n > 0 { body(0, n) }
        return
    }
    let chunk = (n + threads - 1) / threads
    DispatchQueue.concurrentPerform(iterations: threads) { i in
        let s = i * chunk
        let e = min(n, s + chunk)
        if s < e { body(s, e) }
    }
}
