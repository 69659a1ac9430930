import COpenBLAS

extension BLAS {
    /// OpenBLAS's thread count is one process-wide setting (this OpenBLAS has no per-call or
    /// per-thread count). It is owned here, under one lock: `Threads.set` gives the pool size,
    /// and while any `withThreads(1)` section runs on any thread the count stays at 1.
    /// Sections that need one thread for their bits (OpenBLAS rounds a GEMM differently with
    /// its thread count; see `ModelBatching`) always get it, whatever other shards run; a
    /// concurrent section that would like the pool merely runs single-threaded meanwhile.
    private struct PoolState {
        var poolThreads = max(1, Int(openblas_get_num_threads()))
        var singleThreadedSections = 0
        var applied: Int32 = -1
        mutating func apply() {
            let want = Int32(singleThreadedSections > 0 ? 1 : poolThreads)
            if want != applied {
                openblas_set_num_threads(want)
                applied = want
            }
        }
    }
    private static let pool = Locked(PoolState())

    /// The pool size, from `Threads.set` (which holds its own lock; this takes the pool's).
    static func setPoolThreads(_ n: Int) {
        pool.withLock { $0.poolThreads = max(1, n); $0.apply() }
    }

    /// Runs `body` with OpenBLAS calls single-threaded when `n` is 1 (the usual use: the
    /// caller runs many small independent GEMMs from its own threads, one attention head or
    /// one convolution tile per thread, and one BLAS thread per call avoids the pool's
    /// wake-up cost). For `n` > 1 the pool keeps the size `Threads.set` gave it: the
    /// process-wide pool cannot be grown for one caller without racing the others.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        guard n <= 1 else { return try body() }
        pool.withLock { $0.singleThreadedSections += 1; $0.apply() }
        defer { pool.withLock { $0.singleThreadedSections -= 1; $0.apply() } }
        return try body()
    }
}
