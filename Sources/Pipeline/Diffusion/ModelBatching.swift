import Foundation
import PipelineTensor

/// How a sampler step calls the model for a batch of samples.
///
/// OpenBLAS's sgemm rounds a row differently depending on the matrix height and
/// on the BLAS thread count (measured: 1, 2, 3 rows vs 4+, and 1 vs 2 threads
/// differ in the last bits), so a batched forward pass is not row-independent
/// and a chain amplifies those bits. `perSample` makes each sample's result a
/// function of its own inputs only.
public enum ModelBatching: Equatable {
    /// One forward per sample (per CFG pair) with single-threaded BLAS and
    /// kernels, `workers` samples at a time: bit-identical whatever the batching,
    /// sharding, retry or thread count (on one BLAS build and CPU family).
    case perSample(workers: Int)
    /// One forward for the whole batch on all threads: rounding depends on the
    /// batch composition and thread count.
    case batched

    /// `perSample` on every thread of `Threads.count`.
    public static var deterministic: ModelBatching { .perSample(workers: Threads.count) }
}

/// Thread-safe slots for the per-sample outputs.
final class RowResults {
    private var rows: [Tensor?]
    private var error: Error?
    private let lock = NSLock()

    init(count: Int) { rows = [Tensor?](repeating: nil, count: count) }

    func set(_ r: Int, _ t: Tensor) { lock.lock(); rows[r] = t; lock.unlock() }
    func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }

    func concatenated() throws -> Tensor {
        if let error { throw error }
        return Tensor.concat(rows.map { $0! })
    }
}

extension ModelBatching {
    /// Calls `forward(rows)` once (batched) or once per row (`perSample`, with
    /// `Threads.count` at 1 on the workers' call paths) and returns the outputs stacked in row order.
    func run(rows n: Int, _ forward: (Range<Int>) throws -> Tensor) throws -> Tensor {
        switch self {
        case .batched:
            return try forward(0..<n)
        case let .perSample(workers):
            let results = RowResults(count: n)
            let w = max(1, min(workers, n))
            // One thread per forward on this call path only (`Threads.with`, bound in each
            // worker), and single-threaded BLAS: other shards running beside this one keep theirs.
            BLAS.withThreads(1) {
                concurrentPerform(w) { k in
                    Threads.with(1) {
                        for r in stride(from: k, to: n, by: w) {
                            do { results.set(r, try forward(r..<(r + 1))) } catch {
                                results.fail(error)
                                return
                            }
                        }
                    }
                }
            }
            return try results.concatenated()
        }
    }
}
