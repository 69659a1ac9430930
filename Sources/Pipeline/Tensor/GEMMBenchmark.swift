import Foundation

/// The machine's matrix-multiply ceiling: GFLOP/s of plain sgemm on one shape.
public enum GEMMBenchmark {
    /// Runs C[m×n] = A[m×k]·B[k×n] repeatedly for at least `seconds` and returns GFLOP/s.
    public static func measure(m: Int, n: Int, k: Int, seconds: Double = 1.0, transB: Bool = true) -> Double {
        let a = Tensor(shape: [m, k], repeating: 0.5)
        let b = Tensor(shape: [n, k], repeating: 0.25)
        let c = Tensor(zeros: [m, n])
        func once() {
            BLAS.sgemm(transA: false, transB: transB, m: m, n: n, k: k, a: a.data, lda: k,
                       b: b.data, ldb: transB ? k : n, beta: 0, c: c.data, ldc: n)
        }
        once()
        var iters = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed = 0.0
        repeat {
            once()
            iters += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return 2.0 * Double(m) * Double(n) * Double(k) * Double(iters) / elapsed / 1e9
    }
}
