import Foundation
import PipelineTensor
import PipelineWeights

/// `nn.GroupNorm(groups, channels, eps=1e-6, affine=True)`, optionally followed by SiLU
/// (every VAE norm but the attention's is followed by the block's `nonlinearity`).
public final class VAEGroupNorm {
    public let weight: Tensor   // weight (C)
    public let bias: Tensor     // bias (C)
    public let groups: Int
    public let eps: Float

    public init(_ p: StateDict, channels: Int, groups: Int, eps: Float = AutoencoderKLConfig.normEps) throws {
        weight = try p.take("weight", shape: [channels])
        bias = try p.take("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
    }

    /// A new tensor (x is kept for the residual).
    public func callAsFunction(_ x: Tensor, silu: Bool) -> Tensor {
        VAEProfile.measure("groupnorm\(silu ? "+silu" : "")") { norm(x, silu: silu) }
    }

    func norm(_ x: Tensor, silu: Bool) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        Normalization.groupNorm(x.data, into: out.data, batch: x.shape[0], channels: x.shape[1],
                                spatial: x.count / (x.shape[0] * x.shape[1]), groups: groups, eps: eps,
                                weight: weight.data, bias: bias.data, silu: silu)
        return out
    }
}
