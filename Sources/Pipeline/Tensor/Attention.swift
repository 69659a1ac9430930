import Foundation

/// Scaled dot-product attention, one implementation per memory layout:
/// - token-major packed q|k|v, multi-head (timm's `Attention` as DiT uses it; the training
///   forward, which keeps the probabilities, and its backward);
/// - channel-major, one head (diffusers' VAE `Attention` on (C, H·W) planes).
/// Every GEMM is a single-threaded BLAS call; the (item, head) pairs run on `Threads.count`
/// threads, so the values do not depend on the thread count.
public enum Attention {
    /// Multi-head attention of (N·T, 3D) rows packed [q | k | v] (each `heads` × D/heads) into
    /// (N·T, D). Each (item, head) pair is two GEMMs read straight out of the packed buffer
    /// (lda = 3D, no copies) around a row softmax. With `probabilities` ((N·heads, T, T),
    /// pair-major) the softmax rows are kept there for `packedBackward`.
    public static func packed(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Int, tokens t: Int,
                              dim d: Int, heads: Int, probabilities: UnsafeMutablePointer<Float>? = nil) {
        let hd = d / heads, ld = 3 * d
        let scale = 1 / Float(hd).squareRoot()
        BLAS.withThreads(1) {
            parallelFor(batch * heads, grain: 1) { s, e in
                let scratch = probabilities == nil ? UnsafeMutablePointer<Float>.allocate(capacity: t * t) : nil
                defer { scratch?.deallocate() }
                for pair in s..<e {
                    let item = pair / heads, h = pair % heads
                    let q = qkv + item * t * ld + h * hd
                    let p = probabilities.map { $0 + pair * t * t } ?? scratch!
                    BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, alpha: scale,
                               a: q, lda: ld, b: q + d, ldb: ld, beta: 0, c: p, ldc: t)
                    for r in 0..<t { Softmax.row(p + r * t, width: t) }
                    BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t,
                               a: p, lda: t, b: q + 2 * d, ldb: ld, beta: 0,
                               c: out + item * t * d + h * hd, ldc: d)
                }
            }
        }
    }

    /// The adjoint of `packed`: given d(out) (N·T, D) and the kept probabilities, writes
    /// d(qkv) packed like qkv.
    public static func packedBackward(qkv: UnsafePointer<Float>, probabilities: UnsafePointer<Float>,
                                      dOut: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>,
                                      batch: Int, tokens t: Int, dim d: Int, heads: Int) {
        let hd = d / heads, ld = 3 * d
        let scale = 1 / Float(hd).squareRoot()
        BLAS.withThreads(1) {
            parallelFor(batch * heads, grain: 1) { s, e in
                let dp = UnsafeMutablePointer<Float>.allocate(capacity: t * t)
                defer { dp.deallocate() }
                for pair in s..<e {
                    let item = pair / heads, h = pair % heads
                    let q = qkv + item * t * ld + h * hd, k = q + d, v = q + 2 * d
                    let dq = dqkv + item * t * ld + h * hd, dk = dq + d, dv = dq + 2 * d
                    let p = probabilities + pair * t * t, go = dOut + item * t * d + h * hd
                    // dV = Pᵀ·dO; dP = dO·Vᵀ.
                    BLAS.sgemm(transA: true, m: t, n: hd, k: t, a: p, lda: t, b: go, ldb: d, beta: 0, c: dv, ldc: ld)
                    BLAS.sgemm(transB: true, m: t, n: t, k: hd, a: go, lda: d, b: v, ldb: ld, beta: 0, c: dp, ldc: t)
                    // dS = P ⊙ (dP − rowsum(dP ⊙ P)), then the 1/√d scale.
                    for r in 0..<t {
                        let pr = p + r * t, gr = dp + r * t
                        var dot: Float = 0
                        for j in 0..<t { dot += pr[j] * gr[j] }
                        for j in 0..<t { gr[j] = pr[j] * (gr[j] - dot) * scale }
                    }
                    // dQ = dS·K; dK = dSᵀ·Q.
                    BLAS.sgemm(m: t, n: hd, k: t, a: dp, lda: t, b: k, ldb: ld, beta: 0, c: dq, ldc: ld)
                    BLAS.sgemm(transA: true, m: t, n: hd, k: t, a: dp, lda: t, b: q, ldb: ld, beta: 0, c: dk, ldc: ld)
                }
            }
        }
    }

    /// One head on channel-major planes: q, k, v are (C, T) (row stride T), and
    /// out (C, T) = v · softmax(qᵀk / √C)ᵀ, i.e. out[c][i] = Σ_j v[c][j] p[i][j].
    /// `scores` holds T·T floats.
    public static func channelMajor(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                    channels c: Int, tokens t: Int, scores: UnsafeMutablePointer<Float>,
                                    out: UnsafeMutablePointer<Float>) {
        // scores[i][j] = Σ_c q[c][i] k[c][j] / √C
        BLAS.sgemm(transA: true, m: t, n: t, k: c, alpha: 1 / Float(c).squareRoot(), a: q, lda: t, b: k, ldb: t,
                   beta: 0, c: scores, ldc: t)
        Softmax.rows(scores, rows: t, width: t)
        BLAS.sgemm(transB: true, m: c, n: t, k: t, a: v, lda: t, b: scores, ldb: t, beta: 0, c: out, ldc: t)
    }

    /// 2·(q·kᵀ) + 2·(p·v) multiply-adds over all heads of `packed`.
    public static func packedFlops(batch: Int, tokens t: Int, dim d: Int) -> Double {
        2 * 2 * Double(batch) * Double(t) * Double(t) * Double(d)
    }
}
