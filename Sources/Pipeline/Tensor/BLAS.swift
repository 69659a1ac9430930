import COpenBLAS

/// The one place that calls BLAS. Row-major single-precision GEMM:
/// C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C.
public enum BLAS {
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Double-precision GEMM, row-major (statistics).
    @inline(__always)
    public static func dgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_dgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Symmetric eigendecomposition (LAPACK dsyevd), row-major, in place:
    /// on return `a` holds the eigenvectors as columns, `w` the eigenvalues
    /// in ascending order. Returns LAPACK's info code (0 on success).
    @discardableResult
    public static func dsyevd(n: Int, a: UnsafeMutablePointer<Double>, w: UnsafeMutablePointer<Double>) -> Int {
        Int(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")),
                           Int32(n), a, Int32(n), w))
    }
}

extension Tensor {
    /// y = x · Wᵀ + b for x of shape (..., inFeatures), W of shape
    /// (outFeatures, inFeatures) as `torch.nn.Linear` stores it.
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        let inF = weight.shape[1], outF = weight.shape[0]
        precondition(shape.last == inF, "linear: input \(shape) does not end in \(inF)")
        let rows = count / inF
        var outShape = shape
        outShape[outShape.count - 1] = outF
        let out = Tensor(uninitialized: outShape)
        Tensor.linear(rows: rows, inF: inF, outF: outF, x: data, weight: weight.data,
                      bias: bias?.data, out: out.data)
        return out
    }

    /// Raw linear kernel: out[rows×outF] = x[rows×inF] · Wᵀ (+ bias).
    public static func linear(rows: Int, inF: Int, outF: Int, x: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            if accumulate {
                for r in 0..<rows { let o = out + r * outF; for j in 0..<outF { o[j] += bias[j] } }
            } else {
                for r in 0..<rows { (out + r * outF).update(from: bias, count: outF) }
            }
            beta = 1
        }
        BLAS.sgemm(transA: false, transB: true, m: rows, n: outF, k: inF,
                   a: x, lda: inF, b: weight, ldb: inF, beta: beta, c: out, ldc: outF)
    }
}
