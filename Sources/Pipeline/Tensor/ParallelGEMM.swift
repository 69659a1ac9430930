import Foundation

extension BLAS {
    /// Row-major sgemm split across `Threads.count` threads by rows of C (or, when C has
    /// fewer rows than threads have work for, by columns), each part a single-threaded BLAS
    /// call. Call it inside `BLAS.withThreads(1)`: the work is then shared by the same
    /// threads that run the elementwise passes, with no BLAS pool spinning beside them.
    public static func sgemmSplit(transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let threads = Threads.count
        let work: Double = Double(m) * Double(n) * Double(k)
        if threads <= 1 || work < 2_097_152 {
            sgemm(transA: false, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if m >= 16 * threads {
            // Row blocks, multiples of 16 so each part keeps whole register tiles.
            let chunk = ((m + threads - 1) / threads + 15) / 16 * 16
            concurrentPerform(threads) { i in
                let r0 = i * chunk, r1 = min(m, r0 + chunk)
                guard r0 < r1 else { return }
                sgemm(transA: false, transB: transB, m: r1 - r0, n: n, k: k, alpha: alpha, a: a + r0 * lda, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: c + r0 * ldc, ldc: ldc)
            }
        } else {
            let chunk = ((n + threads - 1) / threads + 15) / 16 * 16
            concurrentPerform(threads) { i in
                let c0 = i * chunk, c1 = min(n, c0 + chunk)
                guard c0 < c1 else { return }
                let bPart = transB ? b + c0 * ldb : b + c0
                sgemm(transA: false, transB: transB, m: m, n: c1 - c0, k: k, alpha: alpha, a: a, lda: lda,
                      b: bPart, ldb: ldb, beta: beta, c: c + c0, ldc: ldc)
            }
        }
    }
}
