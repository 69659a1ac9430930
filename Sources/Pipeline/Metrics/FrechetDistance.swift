import Foundation
import PipelineTensor

/// The Fréchet distance between two Gaussians,
///   d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½,
/// in float64 through symmetric eigendecompositions only, so it is never
/// complex and copes with singular covariances (fewer samples than dimensions).
///
/// pytorch-fid computes tr sqrtm(Σ₁Σ₂) with scipy's (non-symmetric) sqrtm and
/// drops a small imaginary part; the eigenvalues of Σ₁Σ₂ are those of
/// Σ₁^½ Σ₂ Σ₁^½, so both traces agree. With Σ₁ = VΛVᵀ and A = VΛ^½,
/// Aᵀ Σ₂ A is similar to Σ₁^½ Σ₂ Σ₁^½, and its eigenvalues are all we need.
public enum FrechetDistance {
    public static func compute(_ a: GaussianStatistics, _ b: GaussianStatistics) throws -> Double {
        guard a.dimension == b.dimension else {
            throw MetricsError.shape("Fréchet distance: dimensions differ (\(a.dimension) vs \(b.dimension))")
        }
        let d = a.dimension
        guard a.mu.allSatisfy(\.isFinite), b.mu.allSatisfy(\.isFinite), a.sigma.allSatisfy(\.isFinite), b.sigma.allSatisfy(\.isFinite) else {
            throw MetricsError.numerical("Fréchet distance: statistics contain NaN or infinity")
        }
        var diff2 = 0.0
        for i in 0..<d { let t = a.mu[i] - b.mu[i]; diff2 += t * t }
        var tr1 = 0.0, tr2 = 0.0
        for i in 0..<d { tr1 += a.sigma[i * d + i]; tr2 += b.sigma[i * d + i] }
        return diff2 + tr1 + tr2 - 2 * (try traceSqrtProduct(a.sigma, b.sigma, d))
    }

    /// tr (Σ₁^½ Σ₂ Σ₁^½)^½ for symmetric positive semi-definite Σ₁, Σ₂ (row-major d×d).
    ///
    /// Fast path: when Σ₁ is positive definite, Σ₁ = L·Lᵀ (Cholesky) and Σ₁Σ₂ = L·(Lᵀ Σ₂ L)·L⁻¹,
    /// so the eigenvalues needed are those of the symmetric Lᵀ Σ₂ L: one dpotrf, two dtrmm and
    /// an eigenvalues-only dsyevd, about a third of the arithmetic of the eigenvector path.
    /// A singular Σ₁ (fewer samples than dimensions) fails the factorisation and takes the
    /// eigenvector path, which clamps Σ₁'s rounding-negative eigenvalues to zero.
    public static func traceSqrtProduct(_ s1: [Double], _ s2: [Double], _ d: Int) throws -> Double {
        if let viaCholesky = try traceSqrtProductCholesky(s1, s2, d) { return viaCholesky }
        return try traceSqrtProductEigen(s1, s2, d)
    }

    /// The Cholesky path; nil when Σ₁ is not numerically positive definite.
    static func traceSqrtProductCholesky(_ s1: [Double], _ s2: [Double], _ d: Int) throws -> Double? {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0...i { l[i * d + j] = 0.5 * (s1[i * d + j] + s1[j * d + i]) } }
        let info = l.withUnsafeMutableBufferPointer { BLAS.dpotrfLower(n: d, a: $0.baseAddress!) }
        guard info == 0 else { return nil }
        var m = s2
        l.withUnsafeBufferPointer { lp in
            m.withUnsafeMutableBufferPointer { mp in
                BLAS.dtrmmLower(right: true, n: d, l: lp.baseAddress!, b: mp.baseAddress!)    // Σ₂·L
                BLAS.dtrmmLower(right: false, n: d, l: lp.baseAddress!, b: mp.baseAddress!)   // Lᵀ·(Σ₂·L)
            }
        }
        return try sumSqrtEigenvalues(&m, d)
    }

    /// The eigenvector path: Σ₁ = VΛVᵀ, A = V·Λ^½, eigenvalues of Aᵀ Σ₂ A.
    static func traceSqrtProductEigen(_ s1: [Double], _ s2: [Double], _ d: Int) throws -> Double {
        // Σ₁ = V Λ Vᵀ; symmetrise first (np.cov output is symmetric to rounding).
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { v[i * d + j] = 0.5 * (s1[i * d + j] + s1[j * d + i]) } }
        var lambda = [Double](repeating: 0, count: d)
        let info = v.withUnsafeMutableBufferPointer { vp in
            lambda.withUnsafeMutableBufferPointer { BLAS.dsyevd(n: d, a: vp.baseAddress!, w: $0.baseAddress!) }
        }
        guard info == 0 else { throw MetricsError.numerical("eigendecomposition of sigma1 failed (LAPACK info \(info))") }
        // A = V · diag(√max(λ, 0)): the eigenvector columns scaled in place.
        for j in 0..<d {
            let s = max(lambda[j], 0).squareRoot()
            for i in 0..<d { v[i * d + j] *= s }
        }
        // M = Aᵀ Σ₂ A.
        var t = [Double](repeating: 0, count: d * d)
        var m = [Double](repeating: 0, count: d * d)
        s2.withUnsafeBufferPointer { s2p in
            v.withUnsafeBufferPointer { ap in
                t.withUnsafeMutableBufferPointer { tp in
                    BLAS.dgemm(m: d, n: d, k: d, a: s2p.baseAddress!, lda: d, b: ap.baseAddress!, ldb: d,
                               c: tp.baseAddress!, ldc: d)
                }
                m.withUnsafeMutableBufferPointer { mp in
                    t.withUnsafeBufferPointer { tp in
                        BLAS.dgemm(transA: true, m: d, n: d, k: d, a: ap.baseAddress!, lda: d, b: tp.baseAddress!, ldb: d,
                                   c: mp.baseAddress!, ldc: d)
                    }
                }
            }
        }
        return try sumSqrtEigenvalues(&m, d)
    }

    /// Σ √max(μᵢ, 0) over the eigenvalues μ of the (symmetrised) d×d matrix m, destroyed.
    static func sumSqrtEigenvalues(_ m: inout [Double], _ d: Int) throws -> Double {
        for i in 0..<d { for j in (i + 1)..<max(d, i + 1) { let s = 0.5 * (m[i * d + j] + m[j * d + i]); m[i * d + j] = s; m[j * d + i] = s } }
        var mu = [Double](repeating: 0, count: d)
        let info2 = m.withUnsafeMutableBufferPointer { mp in
            mu.withUnsafeMutableBufferPointer { BLAS.dsyevdValues(n: d, a: mp.baseAddress!, w: $0.baseAddress!) }
        }
        guard info2 == 0 else { throw MetricsError.numerical("eigendecomposition of sigma1^1/2 sigma2 sigma1^1/2 failed (LAPACK info \(info2))") }
        // Negative eigenvalues are rounding noise of a PSD matrix: clamp them to 0.
        return mu.reduce(0) { $0 + max($1, 0).squareRoot() }
    }
}
