import COpenBLAS

extension BLAS {
    /// Eigenvalues only of a symmetric matrix (LAPACK dsyevd, job "N"),
    /// ascending; `a` (row-major, n×n) is destroyed. Returns LAPACK's info code.
    @discardableResult
    public static func dsyevdValues(n: Int, a: UnsafeMutablePointer<Double>, w: UnsafeMutablePointer<Double>) -> Int {
        Int(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "U")),
                           Int32(n), a, Int32(n), w))
    }
}
