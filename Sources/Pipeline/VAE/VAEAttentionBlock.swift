import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `Attention` as `UNetMidBlock2D` builds it for the VAE: one head over all channels,
/// GroupNorm first, biases on every projection, a residual connection, `rescale_output_factor` 1.
/// Checkpoints saved before diffusers 0.14 name the projections query/key/value/proj_attn;
/// both spellings load.
public final class VAEAttentionBlock {
    public let groupNorm: VAEGroupNorm      // group_norm
    public let qkvWeight: Tensor            // to_q.weight, to_k.weight, to_v.weight stacked (3C, C)
    public let qkvBias: Tensor              // to_q.bias, to_k.bias, to_v.bias stacked (3C)
    public let outWeight: Tensor            // to_out.0.weight (C, C)
    public let outBias: Tensor              // to_out.0.bias (C)
    public let channels: Int

    public init(_ p: StateDict, channels c: Int, groups: Int) throws {
        channels = c
        groupNorm = try VAEGroupNorm(p.scope("group_norm"), channels: c, groups: groups)
        let legacy = !p.has("to_q.weight") && p.has("query.weight")
        let names = legacy ? ["query", "key", "value", "proj_attn"] : ["to_q", "to_k", "to_v", "to_out.0"]
        func linear(_ name: String) throws -> (Tensor, Tensor) {
            // The original LDM checkpoints store these as 1x1 convolutions; either shape loads.
            let conv = p.shape("\(name).weight") == [c, c, 1, 1]
            let w = try p.take("\(name).weight", shape: conv ? [c, c, 1, 1] : [c, c]).reshaped([c, c])
            return (w, try p.take("\(name).bias", shape: [c]))
        }
        let q = try linear(names[0]), k = try linear(names[1]), v = try linear(names[2])
        qkvWeight = Tensor.concat([q.0, k.0, v.0])
        qkvBias = Tensor.concat([q.1, k.1, v.1])
        (outWeight, outBias) = try linear(names[3])
    }

    /// x (N, C, H, W) → x + to_out(softmax(QᵀK / √C) applied to V), computed channel-major:
    /// Q, K, V are (C, HW) so no transposes are needed.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        VAEProfile.measure("attention") { attend(x) }
    }

    func attend(_ x: Tensor) -> Tensor {
        let n = x.shape[0], c = channels, t = x.count / (n * c)
        let hn = groupNorm(x, silu: false)
        let out = x.copy()                                      // residual
        let qkv = Tensor(uninitialized: [3 * c, t])
        let scores = Tensor(uninitialized: [t, t])
        let attended = Tensor(uninitialized: [c, t])
        for b in 0..<n {
            let xb = hn.data + b * c * t
            for r in 0..<(3 * c) { (qkv.data + r * t).update(repeating: qkvBias.data[r], count: t) }
            BLAS.sgemm(m: 3 * c, n: t, k: c, a: qkvWeight.data, lda: c, b: xb, ldb: t, beta: 1, c: qkv.data, ldc: t)
            Attention.channelMajor(q: qkv.data, k: qkv.data + c * t, v: qkv.data + 2 * c * t, channels: c, tokens: t,
                                   scores: scores.data, out: attended.data)
            let ob = out.data + b * c * t
            for r in 0..<c { let bias = outBias.data[r]; let row = ob + r * t; for i in 0..<t { row[i] += bias } }
            BLAS.sgemm(m: c, n: t, k: c, a: outWeight.data, lda: c, b: attended.data, ldb: t, beta: 1, c: ob, ldc: t)
        }
        return out
    }

    public func flops(height: Int, width: Int) -> Double {
        let t = Double(height * width), c = Double(channels)
        return 2 * (4 * c * c * t + 2 * t * t * c)
    }
}
