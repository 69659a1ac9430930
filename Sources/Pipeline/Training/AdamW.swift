import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT

/// `torch.optim.AdamW` (single tensor path) over a model's trainable parameters:
///
///     p ← p·(1 − lr·wd)                     # decoupled weight decay, applied first
///     m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²
///     p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
///
/// State (`exp_avg`, `exp_avg_sq`, `step`) is kept per parameter in the model's order.
public final class AdamW {
    public var lr: Float
    public var weightDecay: Float
    public let beta1: Float, beta2: Float, eps: Float
    public private(set) var step: Int = 0
    let expAvg: [Tensor], expAvgSq: [Tensor]
    let names: [String]

    public init(model: TrainableDiT, lr: Float, weightDecay: Float = 0, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.lr = lr
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        let trainable = model.parameters.filter { $0.grad != nil }
        names = trainable.map(\.name)
        expAvg = trainable.map { Tensor(zeros: $0.value.shape) }
        expAvgSq = trainable.map { Tensor(zeros: $0.value.shape) }
    }

    /// One update from the gradients the model holds.
    public func update(_ model: TrainableDiT) throws {
        let params = model.parameters.filter { $0.grad != nil }
        guard params.map(\.name) == names else {
            throw DiTError.badInput("the optimizer state was made for other parameters")
        }
        step += 1
        let bc1 = 1 - Foundation.pow(Double(beta1), Double(step))
        let bc2 = 1 - Foundation.pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / bc1), bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - lr * weightDecay
        let b1 = beta1, b2 = beta2, eps = self.eps
        for (k, p) in params.enumerated() {
            guard let g = p.grad?.data else { continue }
            let w = p.value.data, m = expAvg[k].data, v = expAvgSq[k].data
            parallelFor(p.value.count, grain: 16384) { s, e in
                for i in s..<e {
                    w[i] *= decay
                    m[i] += (g[i] - m[i]) * (1 - b1)   // torch: exp_avg.lerp_(grad, 1 − β₁)
                    v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i]
                    let denom = v[i].squareRoot() / bc2Sqrt + eps
                    w[i] -= stepSize * (m[i] / denom)
                }
            }
        }
    }

    /// The state for a checkpoint: `opt.<param>.exp_avg`, `opt.<param>.exp_avg_sq`; the step in metadata.
    public func save(into writer: inout SafeTensorsWriter) {
        for (k, name) in names.enumerated() {
            writer.add("opt.\(name).exp_avg", expAvg[k])
            writer.add("opt.\(name).exp_avg_sq", expAvgSq[k])
        }
        writer.metadata["opt_step"] = String(step)
    }

    /// Restores the state `save` wrote (strict: every tensor present with its shape).
    public func load(from source: TensorSource, metadata: [String: String]) throws {
        for (k, name) in names.enumerated() {
            for (key, t) in [("opt.\(name).exp_avg", expAvg[k]), ("opt.\(name).exp_avg_sq", expAvgSq[k])] {
                let stored = try source.tensor(key, shape: t.shape)
                t.data.update(from: stored.data, count: t.count)
            }
        }
        guard let s = metadata["opt_step"].flatMap({ Int($0) }), s >= 0 else {
            throw WeightError.malformed(file: source.sourceName, reason: "metadata 'opt_step' is missing or not a count")
        }
        step = s
    }
}

extension TrainableDiT {
    /// `torch.nn.utils.clip_grad_norm_`: the global L2 norm of the gradients; when it exceeds
    /// `maxNorm` every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm before clipping.
    @discardableResult
    public func clipGradients(maxNorm: Float?) -> Float {
        var total = 0.0
        for p in parameters { if let g = p.grad { for i in 0..<g.count { total += Double(g.data[i]) * Double(g.data[i]) } } }
        let norm = Float(total.squareRoot())
        if let maxNorm, maxNorm > 0 {
            let coef = maxNorm / (norm + 1e-6)
            if coef < 1 { for p in parameters { p.grad?.scaleInPlace(coef) } }
        }
        return norm
    }
}
