import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `Encoder` (`double_z=True`): conv_in, the down blocks, the mid block,
/// conv_norm_out + SiLU, conv_out to 2 × latent_channels (mean and log-variance).
public final class VAEEncoder {
    public let convIn: VAEConv2d                  // conv_in
    public let downBlocks: [VAEDownBlock]         // down_blocks.i
    public let midBlock: VAEMidBlock              // mid_block
    public let convNormOut: VAEGroupNorm          // conv_norm_out
    public let convOut: VAEConv2d                 // conv_out

    public init(_ p: StateDict, config c: AutoencoderKLConfig) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        convIn = try VAEConv2d(p.scope("conv_in"), inChannels: c.inChannels, outChannels: ch[0], kernel: 3)
        downBlocks = try ch.indices.map { i in
            try VAEDownBlock(p.scope("down_blocks.\(i)"), inChannels: i == 0 ? ch[0] : ch[i - 1], outChannels: ch[i],
                             layers: c.layersPerBlock, groups: g, downsample: i != ch.count - 1)
        }
        midBlock = try VAEMidBlock(p.scope("mid_block"), channels: ch[ch.count - 1], groups: g,
                                   addAttention: c.midBlockAddAttention)
        convNormOut = try VAEGroupNorm(p.scope("conv_norm_out"), channels: ch[ch.count - 1], groups: g)
        convOut = try VAEConv2d(p.scope("conv_out"), inChannels: ch[ch.count - 1], outChannels: 2 * c.latentChannels, kernel: 3)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(x)
        for block in downBlocks { h = block(h) }
        h = midBlock(h)
        return convOut(convNormOut(h, silu: true))
    }

    /// Floating-point operations of one image of size h × w (convolutions, attention).
    public func flops(height: Int, width: Int) -> Double {
        var h = height, w = width
        var total = convIn.flops(height: h, width: w)
        for block in downBlocks {
            total += block.resnets.reduce(0) { $0 + $1.flops(height: h, width: w) }
            if let d = block.downsampler {
                total += d.flops(height: h, width: w)
                (h, w) = d.geometry.outputSize(height: h, width: w)
            }
        }
        return total + midBlock.flops(height: h, width: w) + convOut.flops(height: h, width: w)
    }
}
