import Foundation
import PipelineTensor
import PipelineWeights

/// Timing of the SD-VAE-shaped AutoencoderKL with random weights.
public struct VAEBenchmarkResult: Codable {
    public var imageSize: Int
    public var batch: Int
    public var threads: Int
    public var winograd: Bool
    public var encodeSecondsPerImage: Double?
    public var decodeSecondsPerImage: Double
    /// Direct-convolution FLOPs (2 × multiply-adds of the convolutions and attention) per
    /// second; with Winograd the machine performs fewer, so this is an effective rate.
    public var encodeGFLOPS: Double?
    public var decodeGFLOPS: Double
    public var encodeGFLOPPerImage: Double
    public var decodeGFLOPPerImage: Double
    /// Peak resident memory of the process so far (getrusage), MiB.
    public var peakRSSMiB: Double
}

public enum VAEBenchmark {
    /// Builds the model (random weights, seed 0), then times `iterations` encodes of a batch of
    /// random images (skipped when `decodeOnly`) and `iterations` decodes of a batch of latents.
    public static func run(config: AutoencoderKLConfig = .stableDiffusion, imageSize: Int, batch: Int = 1,
                           iterations: Int = 1, decodeOnly: Bool = false,
                           options: VAEOptions = .standard) throws -> VAEBenchmarkResult {
        let vae = try AutoencoderKL.load(config: config, weights: RandomTensorSource.vae(seed: 0), options: options)
        let f = config.downsamplingFactor
        guard imageSize >= f, imageSize % f == 0 else {
            throw VAEError.badInput(what: "bench vae", reason: "image size \(imageSize) is not a multiple of \(f)")
        }
        let side = imageSize / f
        var rng = SystemRandomNumberGenerator()
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t.data[i] = Float.random(in: -1...1, using: &rng) }
            return t
        }
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let iters = max(1, iterations)
        let images = Double(batch * iters)
        var encodeTime: Double?
        if !decodeOnly {
            let x = random([batch, config.inChannels, imageSize, imageSize])
            encodeTime = try seconds { for _ in 0..<iters { _ = try vae.encode(x) } } / images
        }
        let z = random([batch, config.latentChannels, side, side])
        let decodeTime = try seconds { for _ in 0..<iters { _ = try vae.decodeUnscaled(z) } } / images
        let encFlops = vae.encoder.flops(height: imageSize, width: imageSize)
            + (vae.quantConv?.flops(height: side, width: side) ?? 0)
        let decFlops = vae.decoder.flops(height: side, width: side)
            + (vae.postQuantConv?.flops(height: side, width: side) ?? 0)
        return VAEBenchmarkResult(
            imageSize: imageSize, batch: batch, threads: Threads.count, winograd: options.winograd,
            encodeSecondsPerImage: encodeTime, decodeSecondsPerImage: decodeTime,
            encodeGFLOPS: encodeTime.map { encFlops / $0 / 1e9 }, decodeGFLOPS: decFlops / decodeTime / 1e9,
            encodeGFLOPPerImage: encFlops / 1e9, decodeGFLOPPerImage: decFlops / 1e9,
            peakRSSMiB: peakResidentMiB())
    }

    /// Runs encode and decode of one random image of side `imageSize` through Winograd and through
    /// im2col + sgemm for every convolution, and returns the largest difference of each output
    /// relative to the im2col result's largest magnitude (floored at 1), the fixtures' rule.
    public static func winogradDeviation(config: AutoencoderKLConfig = .stableDiffusion, imageSize: Int,
                                         options: VAEOptions = .standard) throws -> (encode: Float, decode: Float) {
        // The same random weights (seed 0) in two models, one per algorithm.
        var direct = options, fast = options
        direct.winograd = false
        fast.winograd = true
        let viaWinograd = try AutoencoderKL.load(config: config, weights: RandomTensorSource.vae(seed: 0), options: fast)
        let viaIm2col = try AutoencoderKL.load(config: config, weights: RandomTensorSource.vae(seed: 0), options: direct)
        let x = Tensor(uninitialized: [1, config.inChannels, imageSize, imageSize])
        for i in 0..<x.count { x.data[i] = sinf(Float(i) * 0.013) }
        func outputs(_ vae: AutoencoderKL) throws -> (Tensor, Tensor) {
            let mean = try vae.encode(x).mean
            return (mean, try vae.decodeUnscaled(mean))
        }
        let f = try outputs(viaWinograd), d = try outputs(viaIm2col)
        func deviation(_ a: Tensor, _ b: Tensor) -> Float {
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a.data[i] - b.data[i])) }
            return worst / max(b.maxAbs, 1)
        }
        // Decode the same latent both ways so that only the decoder's difference is measured.
        let decodedFast = try viaWinograd.decodeUnscaled(d.0)
        return (deviation(f.0, d.0), deviation(decodedFast, d.1))
    }

    /// ru_maxrss of this process, MiB.
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024   // kilobytes on Linux
    }
}
