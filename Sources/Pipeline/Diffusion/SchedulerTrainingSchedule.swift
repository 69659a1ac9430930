import Foundation
import PipelineTensor

/// A diffusers scheduler's training schedule as its constructor builds it: betas, alphas
/// and `alphas_cumprod` are float32 torch tensors (unlike ADM's float64 numpy arrays).
///
/// Reference quirks copied here (each has a test in `SchedulerScheduleTests`):
/// - `torch.linspace(..., dtype=float32)` computes in float32: step = (end - start) / (n - 1),
///   the first half as start + step·i, the second as end - step·(n - 1 - i); the CPU kernel
///   writes 2·8-element blocks (AVX2 vectors) as base + k·step from each block's first
///   element, and the tail scalar by scalar (`TorchLinspace`).
/// - `torch.cumprod` of a float32 tensor on the CPU accumulates in float64 (`acc_type<float>`
///   is double) and rounds each output to float32.
/// - `1 - alphas_cumprod`, the ratio and the square root of the sigmas are float32 ops.
public struct SchedulerTrainingSchedule {
    public let betas: [Float]
    public let alphasCumprod: [Float]

    public init(_ c: SchedulerConfig) throws {
        let n = c.numTrainTimesteps
        var betas: [Float]
        if let trained = c.trainedBetas {
            betas = trained.map { Float($0) }
        } else {
            switch c.betaSchedule {
            case .linear:
                betas = TorchLinspace.float32(c.betaStart, c.betaEnd, n)
            case .scaledLinear:
                betas = TorchLinspace.float32(c.betaStart.squareRoot(), c.betaEnd.squareRoot(), n).map { $0 * $0 }
            case .squaredcosCapV2:
                // betas_for_alpha_bar: Python floats, then torch.tensor(float32).
                betas = try NoiseSchedule.cosine.betas(steps: n).map { Float($0) }
            case .exp:
                func alphaBar(_ t: Double) -> Double { Foundation.exp(t * -12.0) }
                betas = (0..<n).map { i in
                    Float(min(1 - alphaBar(Double(i + 1) / Double(n)) / alphaBar(Double(i) / Double(n)), 0.999))
                }
            }
        }
        if c.rescaleBetasZeroSNR { betas = Self.rescaleZeroTerminalSNR(betas) }
        guard betas.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1 }) else {
            throw DiffusionError.invalidArgument("scheduler betas must lie in [0, 1]")
        }
        var acp = Self.cumprod(betas.map { 1 - $0 })
        // Quirk: with rescale_betas_zero_snr, DPM-Solver, UniPC and Euler set the last alphā
        // to 2^-24 so the final sigma stays finite; DDIM keeps the 0 (Heun has no such option).
        if c.rescaleBetasZeroSNR, [.dpmSolverMultistep, .uniPCMultistep, .eulerDiscrete].contains(c.scheduler) {
            acp[n - 1] = Float(pow(2.0, -24.0))
        }
        self.betas = betas
        self.alphasCumprod = acp
    }

    /// `torch.cumprod` of float32 on the CPU: a float64 running product, each output rounded.
    static func cumprod(_ a: [Float]) -> [Float] {
        var run = 1.0
        return a.map { run *= Double($0); return Float(run) }
    }

    /// `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1), in float32 tensor ops.
    static func rescaleZeroTerminalSNR(_ betas: [Float]) -> [Float] {
        let s = cumprod(betas.map { 1 - $0 }).map { $0.squareRoot() }
        let s0 = s[0], sT = s[s.count - 1]
        let k = s0 / (s0 - sT)
        let bar = s.map { ($0 - sT) * k }.map { $0 * $0 }
        var alphas = [bar[0]]
        for i in 1..<bar.count { alphas.append(bar[i] / bar[i - 1]) }
        return alphas.map { 1 - $0 }
    }

    /// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` in float32, ascending in t.
    public var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }

    /// `np.log` of the float32 sigmas (float32).
    var logSigmas: [Float] { sigmas.map { Foundation.log($0) } }
}

/// `torch.linspace(start, end, steps, dtype=torch.float32)` on the CPU, bit for bit with
/// PyTorch's AVX2 kernel (see `SchedulerTrainingSchedule`).
enum TorchLinspace {
    static let vectorWidth = 8

    static func float32(_ startValue: Double, _ endValue: Double, _ steps: Int) -> [Float] {
        guard steps > 1 else { return steps == 1 ? [Float(startValue)] : [] }
        let start = Float(startValue), end = Float(endValue)
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        func scalar(_ i: Int) -> Float {
            i < halfway ? start + step * Float(i) : end - step * Float(steps - i - 1)
        }
        var out = [Float](repeating: 0, count: steps)
        let w = vectorWidth
        var i = 0
        while i + 2 * w <= steps {
            for v in 0..<2 {
                let idx = i + v * w
                let base = scalar(idx)
                for k in 0..<w { out[idx + k] = base + Float(k) * step }
            }
            i += 2 * w
        }
        while i < steps { out[i] = scalar(i); i += 1 }
        return out
    }
}
