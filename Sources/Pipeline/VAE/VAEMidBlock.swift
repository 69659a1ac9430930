import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `UNetMidBlock2D` as the VAE builds it: resnets.0, attentions.0 (unless
/// `mid_block_add_attention` is false), resnets.1, all at the last block's width.
public final class VAEMidBlock {
    public let resnets: [VAEResnetBlock]          // resnets.0, resnets.1
    public let attention: VAEAttentionBlock?      // attentions.0

    public init(_ p: StateDict, channels: Int, groups: Int, addAttention: Bool) throws {
        resnets = try (0..<2).map {
            try VAEResnetBlock(p.scope("resnets.\($0)"), inChannels: channels, outChannels: channels, groups: groups)
        }
        attention = addAttention ? try VAEAttentionBlock(p.scope("attentions.0"), channels: channels, groups: groups) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = resnets[0](x)
        if let attention { h = attention(h) }
        return resnets[1](h)
    }

    public func flops(height: Int, width: Int) -> Double {
        resnets.reduce(0) { $0 + $1.flops(height: height, width: width) }
            + (attention?.flops(height: height, width: width) ?? 0)
    }
}
