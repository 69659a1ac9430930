import Foundation
import PipelineTensor
import PipelineWeights

/// pytorch-fid / torchvision `BasicConv2d`: conv (no bias) → BatchNorm2d(eps=0.001) → ReLU.
/// The BatchNorm is folded into the convolution at load time:
/// W' = W·γ/√(var+ε), b' = β − mean·γ/√(var+ε) (computed in float64).
/// 3×3 stride-1, 1×7/7×1 and 1×3/3×1 convolutions run through Winograd (`PlanarConvolution`)
/// unless the model's `InceptionOptions.fastConvolutions` is off.
public struct BasicConv2d {
    /// The folded convolution: weight (Cout, Cin·kh·kw), bias `bn.bias − bn.running_mean·scale`.
    let conv: PlanarConvolution
    public var inChannels: Int { conv.inChannels }
    public var outChannels: Int { conv.outChannels }
    public var geometry: Conv2DGeometry { conv.geometry }

    public static let batchNormEps = 0.001

    public init(_ w: StateDict, _ cin: Int, _ cout: Int, kernel: (Int, Int),
                stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) throws {
        let geometry = Conv2DGeometry(kernel: kernel, stride: stride, padding: padding)
        let convWeight = try w.take("conv.weight", shape: [cout, cin, kernel.0, kernel.1])   // conv.weight
        let gamma = try w.take("bn.weight", shape: [cout])                                   // bn.weight
        let beta = try w.take("bn.bias", shape: [cout])                                      // bn.bias
        let mean = try w.take("bn.running_mean", shape: [cout])                              // bn.running_mean
        let variance = try w.take("bn.running_var", shape: [cout])                           // bn.running_var
        w.ignore("bn.num_batches_tracked")
        let k = cin * kernel.0 * kernel.1
        let weight = Tensor(uninitialized: [cout, k])
        let bias = Tensor(uninitialized: [cout])
        for o in 0..<cout {
            let s = Double(gamma.data[o]) / (Double(variance.data[o]) + BasicConv2d.batchNormEps).squareRoot()
            for i in 0..<k { weight.data[o * k + i] = Float(Double(convWeight.data[o * k + i]) * s) }
            bias.data[o] = Float(Double(beta.data[o]) - Double(mean.data[o]) * s)
        }
        conv = PlanarConvolution(weight: weight, bias: bias, inChannels: cin, outChannels: cout, geometry: geometry)
    }

    public init(_ w: StateDict, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, padding: Int = 0) throws {
        try self.init(w, cin, cout, kernel: (kernel, kernel), stride: (stride, stride), padding: (padding, padding))
    }

    /// Applies the layer to x (Cin, N, H, W) and writes channels
    /// `channelOffset..<channelOffset+Cout` of `out` (C_total, N, OH, OW).
    public func callAsFunction(_ x: Tensor, into out: Tensor, channelOffset: Int) {
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let plane = n * out.shape[2] * out.shape[3]
        let g = geometry
        OpProfile.measure("conv \(g.kernelH)x\(g.kernelW)/\(g.strideH) \(inChannels)->\(outChannels) @\(h)x\(w) \(conv.algorithm)") {
            conv.apply(x.data, n: n, h: h, w: w, relu: true, out: out.data + channelOffset * plane, ldOut: plane)
        }
    }

    /// Applies the layer to x (Cin, N, H, W), returning (Cout, N, OH, OW).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let (oh, ow) = geometry.outputSize(height: x.shape[2], width: x.shape[3])
        let out = Tensor(uninitialized: [outChannels, x.shape[1], oh, ow])
        self(x, into: out, channelOffset: 0)
        return out
    }
}

/// Pooling on channel-major batches (C, N, H, W), optionally into a channel slice.
enum PlanarPool {
    static func max(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0,
                    into out: Tensor? = nil, channelOffset: Int = 0) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = Pooling.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let ow = Pooling.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        let o = out ?? Tensor(uninitialized: [c, n, oh, ow])
        OpProfile.measure("max pool \(kernel)x\(kernel)/\(stride) \(c) @\(h)x\(w)") {
            Pooling.maxPool(x.data, planes: c * n, height: h, width: w, kernel: kernel, stride: stride,
                            padding: padding, out: o.data + channelOffset * n * oh * ow)
        }
        return o
    }

    static func average(_ x: Tensor, kernel: Int, stride: Int, padding: Int, countIncludePad: Bool) -> Tensor {
        let (c, n, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = Pooling.outputSize(h, kernel: kernel, stride: stride, padding: padding)
        let ow = Pooling.outputSize(w, kernel: kernel, stride: stride, padding: padding)
        let o = Tensor(uninitialized: [c, n, oh, ow])
        OpProfile.measure("avg pool \(kernel)x\(kernel)/\(stride) \(c) @\(h)x\(w)") {
            Pooling.avgPool(x.data, planes: c * n, height: h, width: w, kernel: kernel, stride: stride,
                            padding: padding, countIncludePad: countIncludePad, out: o.data)
        }
        return o
    }
}
