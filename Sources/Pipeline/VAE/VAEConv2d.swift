import Foundation
import PipelineTensor
import PipelineWeights

/// `nn.Conv2d` with bias, as the VAE uses it: 3x3 (padding 1, or the down-sampler's stride 2
/// with an explicit pad) and 1x1 (quant convs, shortcuts). 3x3 stride-1 convolutions go
/// through Winograd F(4x4, 3x3) unless the model's `VAEOptions.winograd` is off (bound on the
/// call path as `ConvolutionOptions.current` by `AutoencoderKL`).
public final class VAEConv2d {
    public let weight: Tensor           // weight (Cout, Cin, kh, kw)
    public let bias: Tensor             // bias (Cout)
    public let geometry: Conv2DGeometry

    /// 3x3 stride-1 convolutions with at least this many input channels go through Winograd;
    /// im2col + sgemm otherwise.
    public static let winogradMinChannels = 8

    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }

    public init(_ p: StateDict, inChannels: Int, outChannels: Int, kernel: Int,
                geometry: Conv2DGeometry) throws {
        weight = try p.take("weight", shape: [outChannels, inChannels, kernel, kernel])
        bias = try p.take("bias", shape: [outChannels])
        self.geometry = geometry
    }

    /// A k×k convolution with stride 1 and "same" padding k/2.
    public convenience init(_ p: StateDict, inChannels: Int, outChannels: Int, kernel: Int) throws {
        try self.init(p, inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                      geometry: Conv2DGeometry(kernel: (kernel, kernel), padding: (kernel / 2, kernel / 2)))
    }

    /// Multiply-adds × 2 for an input of spatial size h × w (per image).
    public func flops(height h: Int, width w: Int) -> Double {
        let (oh, ow) = geometry.outputSize(height: h, width: w)
        return 2 * Double(weight.count) * Double(oh * ow)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let g = geometry
        if ConvolutionOptions.current.fastAlgorithms, g.kernelH == 3, g.kernelW == 3, g.strideH == 1, g.strideW == 1,
           inChannels >= VAEConv2d.winogradMinChannels {
            return VAEProfile.measure("conv3x3 winograd \(inChannels)->\(outChannels) @\(x.shape[2])") {
                Winograd.conv3x3(x, weight: weight, bias: bias, padTop: g.padTop, padBottom: g.padBottom,
                                 padLeft: g.padLeft, padRight: g.padRight)
            }
        }
        return VAEProfile.measure("conv\(g.kernelH)x\(g.kernelW)/\(g.strideH) im2col \(inChannels)->\(outChannels) @\(x.shape[2])") {
            Convolution.conv2d(x, weight: weight, bias: bias, geometry: g)
        }
    }
}
