import Foundation
import PipelineTensor
import PipelineWeights

/// diffusers `ResnetBlock2D` as the VAE builds it (no time embedding, `output_scale_factor` 1,
/// dropout 0): x + conv2(silu(norm2(conv1(silu(norm1(x)))))), with a 1x1 `conv_shortcut`
/// on x when the channel count changes.
public final class VAEResnetBlock {
    public let norm1: VAEGroupNorm          // norm1
    public let conv1: VAEConv2d             // conv1
    public let norm2: VAEGroupNorm          // norm2
    public let conv2: VAEConv2d             // conv2
    public let convShortcut: VAEConv2d?     // conv_shortcut (only when in ≠ out)

    public init(_ p: StateDict, inChannels: Int, outChannels: Int, groups: Int) throws {
        norm1 = try VAEGroupNorm(p.scope("norm1"), channels: inChannels, groups: groups)
        conv1 = try VAEConv2d(p.scope("conv1"), inChannels: inChannels, outChannels: outChannels, kernel: 3)
        norm2 = try VAEGroupNorm(p.scope("norm2"), channels: outChannels, groups: groups)
        conv2 = try VAEConv2d(p.scope("conv2"), inChannels: outChannels, outChannels: outChannels, kernel: 3)
        convShortcut = inChannels == outChannels ? nil
            : try VAEConv2d(p.scope("conv_shortcut"), inChannels: inChannels, outChannels: outChannels, kernel: 1)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        h = conv2(norm2(h, silu: true))
        let shortcut = convShortcut?(x) ?? x
        VAEProfile.measure("residual add") { h.addInPlace(shortcut) }
        return h
    }

    public func flops(height: Int, width: Int) -> Double {
        conv1.flops(height: height, width: width) + conv2.flops(height: height, width: width)
            + (convShortcut?.flops(height: height, width: width) ?? 0)
    }
}
