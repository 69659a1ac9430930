import Foundation

/// diffusers `UNetMidBlock2D` as the VAE builds it: resnets.0, attentions.0 (unless
/// `mid_block_add_attention` is false), resnets.1, all at the last block's width.
public final class VAEMidBlock {
    public let resnets: [VAEResnetBlock]          // resnets.0, resnets.1
    public let attention: VAEAttentionBlock?      // attentions.0

    public init(_ p: VAEParameters, channels: Int, groups: Int, addAttention: Bool) throws {
        resnets = try (0..<2).map {
            try VAEResnetBlock(p.child("resnets.\($0)"), inChannels: channels, outChannels: channels, groups: groups)
        }
        attention = addAttention ? try VAEAttentionBlock(p.child("attentions.0"), channels: channels, groups: groups) : nil
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

/// diffusers `DownEncoderBlock2D`: `layers_per_block` resnets, then (all but the last block)
/// `Downsample2D(use_conv=True, padding=0)`, which pads (left 0, right 1, top 0, bottom 1)
/// and applies a 3x3 stride-2 convolution. That asymmetric pad is a reference quirk.
public final class VAEDownBlock {
    public let resnets: [VAEResnetBlock]          // resnets.j
    public let downsampler: VAEConv2d?            // downsamplers.0.conv

    public static let downsampleGeometry = Conv2DGeometry(kernel: (3, 3), stride: (2, 2),
                                                          padTop: 0, padBottom: 1, padLeft: 0, padRight: 1)

    public init(_ p: VAEParameters, inChannels: Int, outChannels: Int, layers: Int, groups: Int, downsample: Bool) throws {
        resnets = try (0..<layers).map {
            try VAEResnetBlock(p.child("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels,
                               outChannels: outChannels, groups: groups)
        }
        downsampler = downsample
            ? try VAEConv2d(p.child("downsamplers.0.conv"), inChannels: outChannels, outChannels: outChannels,
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

/// diffusers `UpDecoderBlock2D`: `layers_per_block + 1` resnets, then (all but the last block)
/// `Upsample2D(use_conv=True)`: nearest 2x up-sampling and a 3x3 convolution.
public final class VAEUpBlock {
    public let resnets: [VAEResnetBlock]          // resnets.j
    public let upsampler: VAEConv2d?              // upsamplers.0.conv

    public init(_ p: VAEParameters, inChannels: Int, outChannels: Int, layers: Int, groups: Int, upsample: Bool) throws {
        resnets = try (0..<layers).map {
            try VAEResnetBlock(p.child("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels,
                               outChannels: outChannels, groups: groups)
        }
        upsampler = upsample
            ? try VAEConv2d(p.child("upsamplers.0.conv"), inChannels: outChannels, outChannels: outChannels, kernel: 3)
            : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        for r in resnets { h = r(h) }
        if let upsampler { h = upsampler(VAEProfile.measure("upsample nearest") { h.upsampleNearest(scale: 2) }) }
        return h
    }
}
