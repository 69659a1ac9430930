import COpenBLAS

extension BLAS {
    /// Cholesky factorisation A = L·Lᵀ of a symmetric positive-definite matrix (LAPACK dpotrf),
    /// row-major n×n, in place: the lower triangle becomes L (the strict upper triangle is left
    /// as it was). Returns LAPACK's info code: 0 on success, k > 0 when the leading minor of
    /// order k is not positive definite (a singular or indefinite matrix).
    @discardableResult
    public static func dpotrfLower(n: Int, a: UnsafeMutablePointer<Double>) -> Int {
        Int(LAPACKE_dpotrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "L")), Int32(n), a, Int32(n)))
    }

    /// B := B·L (`right`) or B := Lᵀ·B (`!right`), for L the lower triangle of `l` (n×n,
    /// non-unit diagonal) and B n×n, row-major, in place (BLAS dtrmm).
    public static func dtrmmLower(right: Bool, n: Int, l: UnsafePointer<Double>, b: UnsafeMutablePointer<Double>) {
        if n == 0 { return }
        cblas_dtrmm(CblasRowMajor, right ? CblasRight : CblasLeft, CblasLower,
                    right ? CblasNoTrans : CblasTrans, CblasNonUnit,
                    Int32(n), Int32(n), 1, l, Int32(n), b, Int32(n))
    }
}
