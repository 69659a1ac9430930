import Foundation
import PipelineTensor

/// Improved precision and recall (Kynkäänniemi et al.) with ADM's
/// `ManifoldEstimator` semantics: k = 3; each set's manifold is the union of
/// balls around its points whose squared radius is the squared distance to
/// the k-th nearest neighbour *counting the point itself* (ADM partitions
/// each distance row, self-distance 0 included, and takes index k);
/// precision = fraction of samples inside the reference manifold, recall =
/// fraction of references inside the sample manifold; "inside" is `d² ≤ r²`.
///
/// Distances are ‖u‖² − 2u·v + ‖v‖² clamped at 0, like ADM's
/// `_batch_pairwise_distances`. ADM evaluates that block in float16 first
/// (falling back to float32 when it overflows); here features are rounded to
/// float16 and the distances rounded to float16 likewise when all are finite
/// in float16, computed in float32 otherwise.
public enum PrecisionRecall {
    public static let admNeighbourhood = 3
    static let rowBlock = 1024

    public struct Result { public var precision: Double; public var recall: Double }

    public static func compute(reference: Tensor, samples: Tensor, k: Int = admNeighbourhood) throws -> Result {
        guard reference.rank == 2, samples.rank == 2, reference.shape[1] == samples.shape[1] else {
            throw MetricsError.shape("precision/recall: features \(reference.shape) and \(samples.shape)")
        }
        guard reference.shape[0] > k, samples.shape[0] > k else {
            throw MetricsError.tooFewSamples("precision/recall with k=\(k) needs more than \(k) vectors per set")
        }
        let half = useHalf(reference) && useHalf(samples)
        let ref = half ? roundedToHalf(reference) : reference
        let smp = half ? roundedToHalf(samples) : samples
        let refRadii = radii(ref, k: k, half: half)
        let smpRadii = radii(smp, k: k, half: half)
        // precision: samples within some reference ball; recall: references within some sample ball.
        let precision = fractionInside(points: smp, centres: ref, radii: refRadii, half: half)
        let recall = fractionInside(points: ref, centres: smp, radii: smpRadii, half: half)
        return Result(precision: precision, recall: recall)
    }

    static func useHalf(_ x: Tensor) -> Bool {
        // ‖x‖² must stay finite in float16 for ADM's float16 block to be taken.
        let d = x.shape[1]
        for i in 0..<x.shape[0] {
            var s: Float = 0
            for j in 0..<d { let v = Float(Float16(x.data[i * d + j])); s += v * v }
            if !Float16(s).isFinite { return false }
        }
        return true
    }

    static func roundedToHalf(_ x: Tensor) -> Tensor {
        let o = Tensor(uninitialized: x.shape)
        for i in 0..<x.count { o.data[i] = Float(Float16(x.data[i])) }
        return o
    }

    static func squaredNorms(_ x: Tensor) -> [Float] {
        let d = x.shape[1]
        return (0..<x.shape[0]).map { i in
            var s: Float = 0
            for j in 0..<d { s += x.data[i * d + j] * x.data[i * d + j] }
            return s
        }
    }

    /// Squared distances of rows `rows` of a to all rows of b, into `out` (rows.count × nb).
    static func distances(_ a: Tensor, _ na: [Float], rows: Range<Int>, _ b: Tensor, _ nb: [Float], half: Bool,
                          out: UnsafeMutablePointer<Float>) {
        let d = a.shape[1], m = b.shape[0]
        BLAS.sgemm(transB: true, m: rows.count, n: m, k: d, alpha: -2, a: a.data + rows.lowerBound * d, lda: d,
                   b: b.data, ldb: d, beta: 0, c: out, ldc: m)
        parallelFor(rows.count, grain: max(1, 65536 / max(m, 1))) { s, e in
            for r in s..<e {
                let row = out + r * m
                let nu = na[rows.lowerBound + r]
                for j in 0..<m {
                    var v = max(nu + row[j] + nb[j], 0)
                    if half { v = Float(Float16(v)) }
                    row[j] = v
                }
            }
        }
    }

    /// Squared distance to the k-th nearest neighbour (self included at rank 0).
    static func radii(_ x: Tensor, k: Int, half: Bool) -> [Float] {
        let n = x.shape[0]
        let norms = squaredNorms(x)
        var out = [Float](repeating: 0, count: n)
        let block = UnsafeMutablePointer<Float>.allocate(capacity: min(rowBlock, n) * n)
        defer { block.deallocate() }
        var r0 = 0
        while r0 < n {
            let r1 = min(n, r0 + rowBlock)
            distances(x, norms, rows: r0..<r1, x, norms, half: half, out: block)
            out.withUnsafeMutableBufferPointer { o in
                let op = o.baseAddress!
                parallelFor(r1 - r0, grain: 8) { s, e in
                    var best = [Float](repeating: .infinity, count: k + 1)
                    for r in s..<e {
                        for t in 0...k { best[t] = .infinity }
                        let row = block + r * n
                        for j in 0..<n {
                            let v = row[j]
                            if v < best[k] {
                                var t = k
                                while t > 0 && best[t - 1] > v { best[t] = best[t - 1]; t -= 1 }
                                best[t] = v
                            }
                        }
                        op[r0 + r] = best[k]
                    }
                }
            }
            r0 = r1
        }
        return out
    }

    static func fractionInside(points: Tensor, centres: Tensor, radii: [Float], half: Bool) -> Double {
        let np = points.shape[0], nc = centres.shape[0]
        let pn = squaredNorms(points), cn = squaredNorms(centres)
        var inside = 0
        let block = UnsafeMutablePointer<Float>.allocate(capacity: min(rowBlock, np) * nc)
        defer { block.deallocate() }
        var r0 = 0
        while r0 < np {
            let r1 = min(np, r0 + rowBlock)
            distances(points, pn, rows: r0..<r1, centres, cn, half: half, out: block)
            for r in 0..<(r1 - r0) {
                let row = block + r * nc
                for j in 0..<nc where row[j] <= radii[j] { inside += 1; break }
            }
            r0 = r1
        }
        return Double(inside) / Double(np)
    }
}
