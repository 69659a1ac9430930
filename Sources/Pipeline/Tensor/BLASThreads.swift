import COpenBLAS

extension BLAS {
    /// Runs `body` with OpenBLAS limited to `n` threads, then restores `Threads.count`
    /// (not the count read before, which a concurrent caller may have lowered). Used where the caller runs many small independent GEMMs from its own
    /// threads (one attention head per thread): one BLAS thread per call avoids
    /// the pool's wake-up cost and keeps concurrent calls from contending for it.
    /// The setting is process-wide: do not overlap with GEMMs that want the pool.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let want = Int32(max(1, n))
        if openblas_get_num_threads() == want { return try body() }  // nested: already so
        openblas_set_num_threads(want)
        defer { openblas_set_num_threads(Int32(Threads.count)) }
        return try body()
    }
}
