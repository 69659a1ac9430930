import Foundation
import PipelineTensor

/// Kernel Inception Distance (Bińkowski et al.) as commonly computed (the
/// original `kid_score`, clean-fid, torch-fidelity): the unbiased MMD² with
/// the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over
/// `subsets` random subsets of `subsetSize` vectors drawn without replacement
/// from each set (subset size capped by the smaller set).
public enum KernelInceptionDistance {
    public struct Result { public var mean: Double; public var std: Double }

    public static func compute(_ a: Tensor, _ b: Tensor, subsets: Int = 100, subsetSize: Int = 1000,
                               seed: UInt64 = 0) throws -> Result {
        guard a.rank == 2, b.rank == 2, a.shape[1] == b.shape[1] else {
            throw MetricsError.shape("KID: features \(a.shape) and \(b.shape)")
        }
        let d = a.shape[1]
        let m = min(a.shape[0], b.shape[0], subsetSize)
        guard m >= 2 else { throw MetricsError.tooFewSamples("KID needs at least 2 vectors per set") }
        var rng = SplitMix64(seed: seed)
        var values: [Double] = []
        let x = Tensor(uninitialized: [m, d]), y = Tensor(uninitialized: [m, d])
        let kxx = Tensor(uninitialized: [m, m]), kyy = Tensor(uninitialized: [m, m]), kxy = Tensor(uninitialized: [m, m])
        for _ in 0..<max(subsets, 1) {
            gather(a, sample(a.shape[0], m, &rng), into: x)
            gather(b, sample(b.shape[0], m, &rng), into: y)
            let s = 1 / Float(d)
            BLAS.sgemm(transB: true, m: m, n: m, k: d, alpha: s, a: x.data, lda: d, b: x.data, ldb: d, c: kxx.data, ldc: m)
            BLAS.sgemm(transB: true, m: m, n: m, k: d, alpha: s, a: y.data, lda: d, b: y.data, ldb: d, c: kyy.data, ldc: m)
            BLAS.sgemm(transB: true, m: m, n: m, k: d, alpha: s, a: x.data, lda: d, b: y.data, ldb: d, c: kxy.data, ldc: m)
            var sxx = 0.0, syy = 0.0, sxy = 0.0
            for i in 0..<m {
                for j in 0..<m {
                    let cxy = Double(kxy.data[i * m + j]) + 1
                    sxy += cxy * cxy * cxy
                    if i != j {
                        let cx = Double(kxx.data[i * m + j]) + 1, cy = Double(kyy.data[i * m + j]) + 1
                        sxx += cx * cx * cx; syy += cy * cy * cy
                    }
                }
            }
            let mm = Double(m)
            values.append((sxx + syy) / (mm * (mm - 1)) - 2 * sxy / (mm * mm))
        }
        let mean = values.reduce(0, +) / Double(values.count)
        let v = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return Result(mean: mean, std: v.squareRoot())
    }

    static func sample(_ n: Int, _ m: Int, _ rng: inout SplitMix64) -> [Int] {
        var idx = Array(0..<n)
        for i in 0..<m { let j = i + Int(rng.next() % UInt64(n - i)); idx.swapAt(i, j) }
        return Array(idx[0..<m])
    }

    static func gather(_ src: Tensor, _ rows: [Int], into dst: Tensor) {
        let d = src.shape[1]
        for (i, r) in rows.enumerated() { (dst.data + i * d).update(from: src.data + r * d, count: d) }
    }
}
