import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `Decoder`: conv_in from the latent, the mid block, the up blocks in reversed
/// channel order, conv_norm_out + SiLU, conv_out.
public final class VAEDecoder {
    public let convIn: VAEConv2d                  // conv_in
    public let midBlock: VAEMidBlock              // mid_block
    public let upBlocks: [VAEUpBlock]             // up_blocks.i
    public let convNormOut: VAEGroupNorm          // conv_norm_out
    public let convOut: VAEConv2d                 // conv_out

    public init(_ p: StateDict, config c: AutoencoderKLConfig) throws {
        let rev = Array(c.blockOutChannels.reversed()), g = c.normNumGroups
        convIn = try VAEConv2d(p.scope("conv_in"), inChannels: c.latentChannels, outChannels: rev[0], kernel: 3)
        midBlock = try VAEMidBlock(p.scope("mid_block"), channels: rev[0], groups: g, addAttention: c.midBlockAddAttention)
        upBlocks = try rev.indices.map { i in
            try VAEUpBlock(p.scope("up_blocks.\(i)"), inChannels: i == 0 ? rev[0] : rev[i - 1], outChannels: rev[i],
                           layers: c.layersPerBlock + 1, groups: g, upsample: i != rev.count - 1)
        }
        convNormOut = try VAEGroupNorm(p.scope("conv_norm_out"), channels: rev[rev.count - 1], groups: g)
        convOut = try VAEConv2d(p.scope("conv_out"), inChannels: rev[rev.count - 1], outChannels: c.outChannels, kernel: 3)
    }

    public func callAsFunction(_ z: Tensor) -> Tensor {
        var h = midBlock(convIn(z))
        for block in upBlocks { h = block(h) }
        return convOut(convNormOut(h, silu: true))
    }

    /// Floating-point operations of one latent of size h × w.
    public func flops(height: Int, width: Int) -> Double {
        var h = height, w = width
        var total = convIn.flops(height: h, width: w) + midBlock.flops(height: h, width: w)
        for block in upBlocks {
            total += block.resnets.reduce(0) { $0 + $1.flops(height: h, width: w) }
            if let u = block.upsampler {
                h *= 2; w *= 2
                total += u.flops(height: h, width: w)
            }
        }
        return total + convOut.flops(height: h, width: w)
    }
}
