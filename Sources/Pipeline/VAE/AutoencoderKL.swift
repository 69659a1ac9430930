import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights

/// diffusers `AutoencoderKL` (Stable Diffusion's VAE): encoder → quant_conv → posterior;
/// latent → post_quant_conv → decoder. Loaded strictly from a diffusers folder.
public final class AutoencoderKL: Autoencoder {
    public let config: AutoencoderKLConfig
    public let encoder: VAEEncoder           // encoder
    public let decoder: VAEDecoder           // decoder
    public let quantConv: VAEConv2d?         // quant_conv (1x1, 2L → 2L)
    public let postQuantConv: VAEConv2d?     // post_quant_conv (1x1, L → L)

    public var imageChannels: Int { config.inChannels }
    public var latentChannels: Int { config.latentChannels }
    public var downsamplingFactor: Int { config.downsamplingFactor }

    /// Winograd on or off, chunk budget, largest image accepted.
    public let options: VAEOptions

    public init(config: AutoencoderKLConfig, parameters p: StateDict, options: VAEOptions = .standard) throws {
        try config.validate(source: "AutoencoderKL")
        self.config = config
        self.options = options
        let l = config.latentChannels
        encoder = try VAEEncoder(p.scope("encoder"), config: config)
        decoder = try VAEDecoder(p.scope("decoder"), config: config)
        quantConv = config.useQuantConv ? try VAEConv2d(p.scope("quant_conv"), inChannels: 2 * l, outChannels: 2 * l, kernel: 1) : nil
        postQuantConv = config.usePostQuantConv ? try VAEConv2d(p.scope("post_quant_conv"), inChannels: l, outChannels: l, kernel: 1) : nil
    }

    /// Names of the weights file in a diffusers folder, in order of preference.
    public static let weightFileNames = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"]

    /// Loads a diffusers folder (`config.json` + `diffusion_pytorch_model.safetensors` or `.bin`),
    /// or a weights file with an optional `config.json` beside it. Without a config the
    /// architecture is inferred from the tensor shapes (`AutoencoderKLConfig.infer`). Every
    /// tensor must be used and match.
    public static func load(folder path: String, options: VAEOptions = .standard) throws -> AutoencoderKL {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WeightError.unreadable(file: path, reason: "no such file or folder")
        }
        let dir = isDir.boolValue ? URL(fileURLWithPath: path) : URL(fileURLWithPath: path).deletingLastPathComponent()
        let file: String
        if isDir.boolValue {
            guard let found = weightFileNames.map({ dir.appendingPathComponent($0).path })
                .first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw VAEError.noWeights(folder: path)
            }
            file = found
        } else {
            file = path
        }
        let source = try WeightsFile.open(file)
        let configPath = dir.appendingPathComponent("config.json").path
        let config = FileManager.default.fileExists(atPath: configPath)
            ? try AutoencoderKLConfig.load(path: configPath)
            : try AutoencoderKLConfig.infer(from: source)
        return try load(config: config, weights: source, options: options)
    }

    /// Builds the model from `source` strictly (missing, unknown or mis-shaped tensors throw).
    public static func load(config: AutoencoderKLConfig, weights source: TensorSource,
                            options: VAEOptions = .standard) throws -> AutoencoderKL {
        let sd = StateDict(source)
        let model = try AutoencoderKL(config: config, parameters: sd, options: options)
        try sd.finish()
        return model
    }

    // MARK: encode / decode

    public func encode(_ images: Tensor) throws -> LatentDistribution {
        try checkImages(images, "VAE input")
        let h = images.shape[2], w = images.shape[3]
        // Every down-sampler halves (floor) a side and needs at least 2 rows and columns.
        guard images.shape[0] >= 1, h >= downsamplingFactor, w >= downsamplingFactor, h * w <= options.maxPixels else {
            throw VAEError.badInput(what: "VAE input",
                                    reason: "image size \(h)x\(w) outside \(downsamplingFactor)...\(options.maxPixels) pixels")
        }
        // One image at a time: memory stays that of a single image whatever the batch.
        // Single-threaded BLAS (see `threadInvariant`): the same bits on every worker.
        let moments = threadInvariant {
            Tensor.concat((0..<images.shape[0]).map { i in
                var m = encoder(images.shape[0] == 1 ? images : images.slice(i..<(i + 1)))
                if let quantConv { m = quantConv(m) }
                return m
            })
        }
        return LatentDistribution(moments: moments)
    }

    /// z · scaling_factor, or (z − shift_factor) · scaling_factor when a shift is configured.
    public func scaled(_ latents: Tensor) -> Tensor {
        let out = latents.copy()
        let s = config.scalingFactor, shift = config.shiftFactor
        for i in 0..<out.count { out.data[i] = ((shift.map { out.data[i] - $0 }) ?? out.data[i]) * s }
        return out
    }

    /// The inverse of `scaled`: z / scaling_factor (+ shift_factor), dividing as DiT's
    /// `vae.decode(samples / 0.18215)` does.
    public func unscaled(_ scaledLatents: Tensor) -> Tensor {
        let out = scaledLatents.copy()
        let s = config.scalingFactor, shift = config.shiftFactor
        for i in 0..<out.count {
            let v = out.data[i] / s
            out.data[i] = shift.map { v + $0 } ?? v
        }
        return out
    }

    public func decode(_ scaledLatents: Tensor) throws -> Tensor {
        try decodeUnscaled(unscaled(scaledLatents))
    }

    /// diffusers `AutoencoderKL.decode(z)`: post_quant_conv, then the decoder.
    public func decodeUnscaled(_ z: Tensor) throws -> Tensor {
        guard z.rank == 4, z.shape[0] >= 1, z.shape[1] == latentChannels, z.shape[2] >= 1, z.shape[3] >= 1 else {
            throw VAEError.badInput(what: "VAE latents", reason: "expected (N, \(latentChannels), h, w), got \(z.shape)")
        }
        let side = downsamplingFactor
        guard z.shape[2] * z.shape[3] * side * side <= options.maxPixels else {
            throw VAEError.badInput(what: "VAE latents", reason: "latent \(z.shape) decodes to more than \(options.maxPixels) pixels")
        }
        // One latent at a time, as in `encode`.
        return threadInvariant { Tensor.concat((0..<z.shape[0]).map { i in
            var h = z.shape[0] == 1 ? z : z.slice(i..<(i + 1))
            if let postQuantConv { h = postQuantConv(h) }
            return decoder(h)
        }) }
    }

    /// Runs `body` with single-threaded OpenBLAS calls. OpenBLAS rounds a GEMM
    /// differently with its thread count, and a sample's pixels (and an image's
    /// latents) must not depend on how many threads a worker has; the heavy 3x3
    /// convolutions still run on all threads (Winograd splits fixed-size chunks
    /// across them), only the small GEMMs (1x1 convolutions, attention) lose threads.
    /// The model's `options` are bound for the kernels on this call path.
    func threadInvariant<R>(_ body: () throws -> R) rethrows -> R {
        try options.convolutions.run { try BLAS.withThreads(1, body) }
    }
}
