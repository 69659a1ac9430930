import Foundation
import PipelineTensor

/// The Inception Score as ADM's evaluator computes it (after improved-gan):
/// softmax of the logits, the samples cut into consecutive splits of
/// `splitSize` (5000; the last split may be shorter), per split
/// exp(mean_i KL(p(y|x_i) ‖ p(y))), and the mean over splits.
/// ADM's logits are `pool_3 · W` without the bias (`FIDInceptionV3.admSoftmaxLogits`).
public enum InceptionScore {
    public static let admSplitSize = 5000

    public static func compute(logits: Tensor, splitSize: Int = admSplitSize) throws -> Double {
        guard logits.rank == 2, logits.shape[0] > 0 else { throw MetricsError.shape("inception score: logits \(logits.shape)") }
        let n = logits.shape[0], k = logits.shape[1]
        // Softmax in float64 (ADM's runs in float32; differences are far below the score's precision).
        var p = [Double](repeating: 0, count: n * k)
        for i in 0..<n {
            let row = logits.data + i * k
            var m = -Double.infinity
            for j in 0..<k { m = max(m, Double(row[j])) }
            var s = 0.0
            for j in 0..<k { let e = Foundation.exp(Double(row[j]) - m); p[i * k + j] = e; s += e }
            for j in 0..<k { p[i * k + j] /= s }
        }
        var scores: [Double] = []
        var start = 0
        while start < n {
            let end = min(n, start + max(splitSize, 1))
            var marginal = [Double](repeating: 0, count: k)
            for i in start..<end { for j in 0..<k { marginal[j] += p[i * k + j] } }
            for j in 0..<k { marginal[j] = Foundation.log(marginal[j] / Double(end - start)) }
            var kl = 0.0
            for i in start..<end {
                var rowKL = 0.0
                for j in 0..<k {
                    let q = p[i * k + j]
                    if q > 0 { rowKL += q * (Foundation.log(q) - marginal[j]) }
                }
                kl += rowKL
            }
            scores.append(Foundation.exp(kl / Double(end - start)))
            start = end
        }
        return scores.reduce(0, +) / Double(scores.count)
    }
}
