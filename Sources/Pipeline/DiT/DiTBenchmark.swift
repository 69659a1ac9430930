import Foundation
import PipelineTensor

/// One GEMM of a forward pass: out[m×n] = in[m×k]·Wᵀ.
public struct GEMMShape: Equatable, CustomStringConvertible {
    public var m: Int, n: Int, k: Int
    public var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
    public var description: String { "\(m)x\(n)x\(k)" }
}

extension DiT {
    /// Floating-point operations of one forward pass at batch `n`: 2·M·N·K for every matmul
    /// (patch embedding, embedder MLPs, adaLN modulations, qkv, projection, MLP, final layer)
    /// plus the attention products q·kᵀ and p·v.
    public func flops(batch n: Int) -> Double {
        let t = config.tokens
        var total = xEmbedder.proj.flops(rows: n * t) + (condition?.timestep.flops(batch: n) ?? 0)
        for b in blocks { total += b.flops(batch: n, tokens: t) }
        return total + finalLayer.flops(batch: n, tokens: t)
    }

    /// The token-wise GEMMs of one block and the final layer, at batch `n`.
    public func gemmShapes(batch n: Int) -> [GEMMShape] {
        let m = n * config.tokens
        guard let b = blocks.first else { return [GEMMShape(m: m, n: finalLayer.linear.outFeatures, k: config.hiddenSize)] }
        return [b.attn.qkv, b.attn.proj, b.mlp.fc1, b.mlp.fc2, finalLayer.linear].map {
            GEMMShape(m: m, n: $0.outFeatures, k: $0.inFeatures)
        }
    }

    /// The largest GEMM (most flops; the first of equals, so fc1 before fc2).
    public func largestGEMM(batch n: Int) -> GEMMShape {
        gemmShapes(batch: n).reduce(nil as GEMMShape?) { best, s in
            guard let best else { return s }
            return s.flops > best.flops ? s : best
        }!
    }
}

/// `dit-worker bench dit`: forward throughput with random weights, against the machine's
/// sgemm ceiling on the model's largest GEMM shape measured in the same run.
public enum DiTBenchmark {
    public struct Result {
        public var model: String
        public var imageSize: Int, batch: Int, threads: Int
        public var iterations: Int
        public var secondsPerForward: Double
        public var imagesPerSecond: Double
        public var gflopPerForward: Double
        public var gflops: Double
        public var ceilingShape: GEMMShape
        public var ceilingGflops: Double
        public var peakResidentMiB: Double
        public var fractionOfCeiling: Double { gflops / ceilingGflops }

        public var json: String {
            let fields: [(String, String)] = [
                ("model", "\"\(model)\""), ("image_size", "\(imageSize)"), ("batch", "\(batch)"),
                ("threads", "\(threads)"), ("iterations", "\(iterations)"),
                ("seconds_per_forward", fmt(secondsPerForward, 4)), ("images_per_s", fmt(imagesPerSecond, 3)),
                ("gflop_per_forward", fmt(gflopPerForward, 2)), ("gflops", fmt(gflops, 2)),
                ("ceiling_gemm", "\"\(ceilingShape)\""), ("ceiling_gflops", fmt(ceilingGflops, 2)),
                ("fraction_of_ceiling", fmt(fractionOfCeiling, 4)), ("peak_rss_mib", fmt(peakResidentMiB, 1)),
            ]
            return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        }

        public var text: String {
            """
            \(model) \(imageSize)px (latent \(imageSize / 8)), batch \(batch), \(threads) threads, \(iterations) forwards
              \(fmt(imagesPerSecond, 2)) images/s (\(fmt(secondsPerForward, 3)) s per forward)
              \(fmt(gflops, 1)) GFLOP/s achieved (\(fmt(gflopPerForward, 1)) GFLOP per forward)
              \(fmt(ceilingGflops, 1)) GFLOP/s ceiling (plain sgemm \(ceilingShape)): \(fmt(100 * fractionOfCeiling, 1))%
              peak resident \(fmt(peakResidentMiB, 0)) MiB
            """
        }

        private func fmt(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }
    }

    public static func run(preset: DiTPreset, imageSize: Int, batch: Int, threads: Int,
                           minSeconds: Double = 3, minIterations: Int = 2, seed: UInt64 = 0) throws -> Result {
        guard imageSize > 0, imageSize % 8 == 0 else {
            throw DiTError.badInput("image size \(imageSize) is not a positive multiple of 8 (the VAE's factor)")
        }
        guard batch > 0, threads > 0 else { throw DiTError.badInput("batch and threads must be positive") }
        Threads.set(threads)
        let config = DiTConfig(preset: preset, inputSize: imageSize / 8)
        let model = try DiT(randomWeights: config, seed: seed)
        var rng = SplitMix64(seed: seed &+ 1)
        let x = rng.uniform([batch, config.inChannels, config.inputSize, config.inputSize], bound: 1.7)
        let t = (0..<batch).map { Float(($0 * 997) % 1000) }
        let y = (0..<batch).map { $0 % config.numClasses }
        let shape = model.largestGEMM(batch: batch)
        _ = try model.forward(x, t: t, y: y)  // warm-up: pages, BLAS buffers, thread pools
        _ = GEMMBenchmark.measure(m: shape.m, n: shape.n, k: shape.k, seconds: 0.2)
        // Forwards and ceiling slices alternate, so that both see the same machine (other
        // processes' load changes over seconds); each figure is total work / total time.
        var iterations = 0
        var forwardSeconds = 0.0, ceilingFlop = 0.0, ceilingSeconds = 0.0
        repeat {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try model.forward(x, t: t, y: y)
            let took = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            forwardSeconds += took
            iterations += 1
            let slice = max(0.3, took / 4)
            ceilingFlop += GEMMBenchmark.measure(m: shape.m, n: shape.n, k: shape.k, seconds: slice) * 1e9 * slice
            ceilingSeconds += slice
        } while forwardSeconds < minSeconds || iterations < minIterations
        let perForward = forwardSeconds / Double(iterations)
        let flops = model.flops(batch: batch)
        let ceiling = ceilingFlop / ceilingSeconds / 1e9
        return Result(model: preset.rawValue, imageSize: imageSize, batch: batch, threads: threads,
                      iterations: iterations, secondsPerForward: perForward,
                      imagesPerSecond: Double(batch) / perForward, gflopPerForward: flops / 1e9,
                      gflops: flops / perForward / 1e9, ceilingShape: shape, ceilingGflops: ceiling,
                      peakResidentMiB: peakResidentMiB())
    }

    /// Peak resident set size of this process (getrusage), in MiB.
    public static func peakResidentMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
    }
}
