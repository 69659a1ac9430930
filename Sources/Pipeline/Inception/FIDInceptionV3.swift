import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

/// How images reach the network: which bilinear resize to 299×299 and which
/// mapping to the network's [-1, 1] input. Recorded with every statistics file.
public enum InceptionPreprocessing: String, Codable, CaseIterable {
    /// pytorch-fid (`resize_input=True, normalize_input=True`): x in [0, 1] →
    /// `F.interpolate(size=(299, 299), mode="bilinear", align_corners=False)` → 2x − 1.
    case pytorchFID = "pytorch-fid"
    /// ADM's evaluator (TF1 graph `classify_image_graph_def.pb`): pixels in
    /// [0, 255] → TF1 `ResizeBilinear` (no half-pixel centres) → (x − 128) / 128.
    /// Note the 128 (not 127.5): the graph's own Sub/Mul constants.
    case tf1ADM = "tf1-adm"

    var convention: BilinearConvention { self == .pytorchFID ? .pytorchHalfPixel : .tf1Legacy }
    /// (scale, shift) applied after resizing a [0, 1] image.
    var affine: (Float, Float) { self == .pytorchFID ? (2, -1) : (255.0 / 128.0, -1) }
}

/// What one forward pass yields, per image (rows).
public struct InceptionFeatures {
    /// (N, 2048): the global average pool after Mixed_7c (TF `pool_3`), pytorch-fid's FID feature.
    public var pool3: Tensor
    /// (N, 17·17·7 = 2023): ADM's sFID feature, TF `mixed_6/conv` (Mixed_6d's
    /// branch1x1 after BN+ReLU), first 7 channels, flattened in NHWC order as
    /// ADM's evaluator flattens `spatial[..., :7]`.
    public var spatial: Tensor
    /// (N, 1008): the `fc` layer on pool3 (weight and bias).
    public var logits: Tensor
}

/// pytorch-fid's `InceptionV3([3])` built by `fid_inception_v3()`: the 2015 TF
/// Inception weights ported to torchvision's Inception3 layout, with the FID
/// blocks (FIDInceptionA/C/E_1/E_2), followed by the 1008-way `fc`.
/// Activations run in the channel-major layout (C, N, H, W) so every
/// convolution is one GEMM over the batch.
public final class FIDInceptionV3 {
    public static let inputSize = 299
    public static let spatialChannels = 7

    let Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3: BasicConv2d
    let Mixed_5b, Mixed_5c, Mixed_5d: FIDInceptionA
    let Mixed_6a: InceptionB
    let Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e: FIDInceptionC
    let Mixed_7a: InceptionD
    let Mixed_7b, Mixed_7c: FIDInceptionE
    /// `fc.weight` (1008, 2048) and `fc.bias` (1008).
    public let fcWeight: Tensor, fcBias: Tensor
    /// Fast convolutions on or off, bound around every forward pass.
    public let options: InceptionOptions

    /// Loads pytorch-fid's state dict (`pt_inception-2015-12-05-6726825d.pth`
    /// or the same tensors as safetensors), strictly.
    public convenience init(source: TensorSource, options: InceptionOptions = .standard) throws {
        let sd = StateDict(source)
        try self.init(weights: sd, options: options)
        try sd.finish()
    }

    /// Opens any weights file `WeightsFile.open` reads.
    public convenience init(path: String, options: InceptionOptions = .standard) throws {
        try self.init(source: try WeightsFile.open(path), options: options)
    }

    public init(weights w: StateDict, options: InceptionOptions = .standard) throws {
        self.options = options
        Conv2d_1a_3x3 = try BasicConv2d(w.scope("Conv2d_1a_3x3"), 3, 32, kernel: 3, stride: 2)
        Conv2d_2a_3x3 = try BasicConv2d(w.scope("Conv2d_2a_3x3"), 32, 32, kernel: 3)
        Conv2d_2b_3x3 = try BasicConv2d(w.scope("Conv2d_2b_3x3"), 32, 64, kernel: 3, padding: 1)
        Conv2d_3b_1x1 = try BasicConv2d(w.scope("Conv2d_3b_1x1"), 64, 80, kernel: 1)
        Conv2d_4a_3x3 = try BasicConv2d(w.scope("Conv2d_4a_3x3"), 80, 192, kernel: 3)
        Mixed_5b = try FIDInceptionA(w.scope("Mixed_5b"), inChannels: 192, poolFeatures: 32)
        Mixed_5c = try FIDInceptionA(w.scope("Mixed_5c"), inChannels: 256, poolFeatures: 64)
        Mixed_5d = try FIDInceptionA(w.scope("Mixed_5d"), inChannels: 288, poolFeatures: 64)
        Mixed_6a = try InceptionB(w.scope("Mixed_6a"), inChannels: 288)
        Mixed_6b = try FIDInceptionC(w.scope("Mixed_6b"), inChannels: 768, channels7x7: 128)
        Mixed_6c = try FIDInceptionC(w.scope("Mixed_6c"), inChannels: 768, channels7x7: 160)
        Mixed_6d = try FIDInceptionC(w.scope("Mixed_6d"), inChannels: 768, channels7x7: 160)
        Mixed_6e = try FIDInceptionC(w.scope("Mixed_6e"), inChannels: 768, channels7x7: 192)
        Mixed_7a = try InceptionD(w.scope("Mixed_7a"), inChannels: 768)
        Mixed_7b = try FIDInceptionE(w.scope("Mixed_7b"), inChannels: 1280, pool: .averageExcludingPad)
        Mixed_7c = try FIDInceptionE(w.scope("Mixed_7c"), inChannels: 2048, pool: .max)
        let fc = w.scope("fc")
        fcWeight = try fc.take("weight", shape: [1008, 2048])   // fc.weight
        fcBias = try fc.take("bias", shape: [1008])             // fc.bias
    }

    /// Images (N, 3, H, W) with values in [0, 1] → resized, normalised input (3, N, 299, 299).
    public static func preprocess(_ images: Tensor, mode: InceptionPreprocessing) throws -> Tensor {
        guard images.rank == 4, images.shape[1] == 3, images.shape[2] > 0, images.shape[3] > 0 else {
            throw InceptionError.badInput("expected images (N, 3, H, W), got \(images.shape)")
        }
        let (n, h, w) = (images.shape[0], images.shape[2], images.shape[3])
        let s = inputSize
        let out = Tensor(uninitialized: [3, n, s, s])
        let (scale, shift) = mode.affine
        // Plane p = b·3 + c of the NCHW input goes to plane c·N + b of the output.
        Resize.bilinear(images.data, planes: n * 3, height: h, width: w, outHeight: s, outWidth: s,
                        convention: mode.convention, scale: scale, shift: shift, dst: out.data,
                        dstPlane: { p in (p % 3) * n + p / 3 })
        return out
    }

    /// The forward pass on images (N, 3, H, W) in [0, 1].
    public func features(_ images: Tensor, mode: InceptionPreprocessing = .pytorchFID) throws -> InceptionFeatures {
        try options.convolutions.run { try forward(images, mode: mode) }
    }

    private func forward(_ images: Tensor, mode: InceptionPreprocessing) throws -> InceptionFeatures {
        let n = images.shape[0]
        var x = try OpProfile.measure("preprocess (resize to 299)") { try FIDInceptionV3.preprocess(images, mode: mode) }
        // block 0
        x = Conv2d_2b_3x3(Conv2d_2a_3x3(Conv2d_1a_3x3(x)))
        x = PlanarPool.max(x, kernel: 3, stride: 2)
        // block 1
        x = Conv2d_4a_3x3(Conv2d_3b_1x1(x))
        x = PlanarPool.max(x, kernel: 3, stride: 2)
        // block 2
        x = Mixed_5d(Mixed_5c(Mixed_5b(x)))
        x = Mixed_6a(x)
        x = Mixed_6c(Mixed_6b(x))
        x = Mixed_6d(x)
        let spatial = FIDInceptionV3.spatialFeatures(x, channels: FIDInceptionV3.spatialChannels)
        x = Mixed_6e(x)
        // block 3
        x = Mixed_7c(Mixed_7b(Mixed_7a(x)))
        let c = x.shape[0]
        let pooledCN = Tensor(uninitialized: [c, n])
        let (pool3, logits) = OpProfile.measure("global pool + fc") {
            Pooling.globalAverage(x.data, planes: c * n, size: x.shape[2] * x.shape[3], out: pooledCN.data)
            let pool3 = pooledCN.permuted([1, 0])
            return (pool3, pool3.linear(weight: fcWeight, bias: fcBias))
        }
        return InceptionFeatures(pool3: pool3, spatial: spatial, logits: logits)
    }

    /// ADM's Inception-Score logits: `pool_3 · softmax/logits/MatMul`'s weight,
    /// without the bias (evaluator.py `_create_softmax_graph` multiplies by the
    /// weight only). Quirk copied on purpose; `features().logits` keeps the bias.
    public func admSoftmaxLogits(_ pool3: Tensor) -> Tensor {
        pool3.linear(weight: fcWeight, bias: nil)
    }

    /// Channels 0..<k of a (C, N, H, W) batch as (N, H·W·k), NHWC order.
    static func spatialFeatures(_ x: Tensor, channels k: Int) -> Tensor {
        let (n, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [n, h * w * k])
        for b in 0..<n {
            for c in 0..<k {
                let src = x.data + (c * n + b) * h * w
                let dst = out.data + b * h * w * k + c
                for p in 0..<(h * w) { dst[p * k] = src[p] }
            }
        }
        return out
    }
}

public enum InceptionError: Error, CustomStringConvertible {
    case badInput(String)
    public var description: String {
        switch self { case let .badInput(s): return "inception: \(s)" }
    }
}
