import Foundation

/// Scaled dot-product multi-head self-attention on packed projections.
public enum Attention {
    /// `q`, `k`, `v` point at the first head of token 0 for one batch item, with
    /// `rowStride` floats between consecutive tokens (e.g. 3·D for a fused qkv
    /// buffer); head h starts `h·headDim` floats in. Writes the (tokens, heads·headDim)
    /// result to `out` with row stride `outStride`. `scratch` holds tokens² floats
    /// per concurrently running head.
    public static func multiHead(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                 rowStride: Int, tokens: Int, heads: Int, headDim: Int,
                                 out: UnsafeMutablePointer<Float>, outStride: Int) {
        let scale = 1 / Float(headDim).squareRoot()
        let scores = Tensor(uninitialized: [heads, tokens, tokens])
        let sp = scores.data
        // Heads are independent GEMM pairs; BLAS threads each one.
        for h in 0..<heads {
            let s = sp + h * tokens * tokens
            BLAS.sgemm(transA: false, transB: true, m: tokens, n: tokens, k: headDim, alpha: scale,
                       a: q + h * headDim, lda: rowStride, b: k + h * headDim, ldb: rowStride,
                       beta: 0, c: s, ldc: tokens)
        }
        Softmax.rows(sp, rows: heads * tokens, width: tokens)
        for h in 0..<heads {
            let s = sp + h * tokens * tokens
            BLAS.sgemm(transA: false, transB: false, m: tokens, n: headDim, k: tokens,
                       a: s, lda: tokens, b: v + h * headDim, ldb: rowStride,
                       beta: 0, c: out + h * headDim, ldc: outStride)
        }
    }

    /// Self-attention over a fused (batch, tokens, 3·dim) qkv tensor laid out as
    /// timm's `Attention` splits it: [q | k | v], each `heads` × `headDim`.
    public static func fusedQKV(_ qkv: Tensor, heads: Int) -> Tensor {
        let b = qkv.shape[0], t = qkv.shape[1], d3 = qkv.shape[2]
        let dim = d3 / 3
        let out = Tensor(uninitialized: [b, t, dim])
        for i in 0..<b {
            let base = qkv.data + i * t * d3
            multiHead(q: base, k: base + dim, v: base + 2 * dim, rowStride: d3, tokens: t,
                      heads: heads, headDim: dim / heads, out: out.data + i * t * dim, outStride: dim)
        }
        return out
    }
}
