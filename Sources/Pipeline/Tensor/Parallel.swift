import Foundation
import COpenBLAS

/// Thread settings shared by BLAS and the elementwise kernels.
///
/// `count` is the calling thread's budget: the value bound by `Threads.with(_:_:)` around
/// the current call (a task-local, so one shard's single-threaded section never changes
/// another shard's), else the process default. The default is genuinely process-wide (the
/// `--threads` a command starts with, and OpenBLAS's own pool size): it is set once at
/// start-up by `Threads.set`, under a lock.
public enum Threads {
    private static let processDefault = Locked(max(1, ProcessInfo.processInfo.activeProcessorCount))
    @TaskLocal private static var bound: Int?

    /// Number of threads for BLAS and for `parallelFor` on this call path.
    public static var count: Int { bound ?? processDefault.current }

    /// Sets the process default (and OpenBLAS's pool size). For start-up and benchmarks:
    /// code that wants fewer threads for a while uses `with(_:_:)`, which other threads do
    /// not see.
    public static func set(_ n: Int) {
        processDefault.withLock { value in
            value = max(1, n)
            BLAS.setPoolThreads(value)
        }
    }

    /// Runs `body` with `count` = `n` on this call path only (nested kernels included).
    public static func with<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        try $bound.withValue(max(1, n), operation: body)
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
    concurrentPerform(threads) { i in
        let s = i * chunk
        let e = min(n, s + chunk)
        if s < e { body(s, e) }
    }
}

/// `DispatchQueue.concurrentPerform` for kernels: `body(i)` for every i in `0..<iterations`,
/// on the dispatch pool, returning when all are done. The body may capture buffers and other
/// non-Sendable values: the caller's contract is that iterations touch disjoint data.
public func concurrentPerform(_ iterations: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let work = IterationBody(body)
        DispatchQueue.concurrentPerform(iterations: iterations) { work.body($0) }
    }
}

/// `concurrentPerform`'s body handed to the worker threads. `@unchecked Sendable` is safe
/// because `DispatchQueue.concurrentPerform` returns only after every iteration has run (the
/// body never outlives the call), and iterations touch disjoint data (the callers' contract).
private struct IterationBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
