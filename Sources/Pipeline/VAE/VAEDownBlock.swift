import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `DownEncoderBlock2D`: `layers_per_block` resnets, then (all but the last block)
/// `Downsample2D(use_conv=True, padding=0)`, which pads (left 0, right 1, top 0, bottom 1)
/// and applies a 3x3 stride-2 convolution. That asymmetric pad is a reference quirk.
public final class VAEDownBlock {
    public let resnets: [VAEResnetBlock]          // resnets.j
    public let downsampler: VAEConv2d?            // downsamplers.0.conv

    public static let downsampleGeometry = Conv2DGeometry(kernel: (3, 3), stride: (2, 2),
                                                          padTop: 0, padBottom: 1, padLeft: 0, padRight: 1)

    public init(_ p: StateDict, inChannels: Int, outChannels: Int, layers: Int, groups: Int, downsample: Bool) throws {
        resnets = try (0..<layers).map {
            try VAEResnetBlock(p.scope("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels,
                               outChannels: outChannels, groups: groups)
        }
        downsampler = downsample
            ? try VAEConv2d(p.scope("downsamplers.0.conv"), inChannels: outChannels, outChannels: outChannels,
                            kernel: 3, geometry: VAEDownBlock.downsampleGeometry)
            : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for r in resnets { h = r(h) }
        if let downsampler { h = downsampler(h) }
        return h
    }
}
