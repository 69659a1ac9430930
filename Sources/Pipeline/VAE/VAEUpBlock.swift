import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `UpDecoderBlock2D`: `layers_per_block + 1` resnets, then (all but the last block)
/// `Upsample2D(use_conv=True)`: nearest 2x up-sampling and a 3x3 convolution.
public final class VAEUpBlock {
    public let resnets: [VAEResnetBlock]          // resnets.j
    public let upsampler: VAEConv2d?              // upsamplers.0.conv

    public init(_ p: StateDict, inChannels: Int, outChannels: Int, layers: Int, groups: Int, upsample: Bool) throws {
        resnets = try (0..<layers).map {
            try VAEResnetBlock(p.scope("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels,
                               outChannels: outChannels, groups: groups)
        }
        upsampler = upsample
            ? try VAEConv2d(p.scope("upsamplers.0.conv"), inChannels: outChannels, outChannels: outChannels, kernel: 3)
            : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for r in resnets { h = r(h) }
        if let upsampler { h = upsampler(VAEProfile.measure("upsample nearest") { h.upsampleNearest(scale: 2) }) }
        return h
    }
}
