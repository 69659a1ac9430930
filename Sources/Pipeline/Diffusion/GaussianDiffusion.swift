import Foundation
import PipelineTensor

/// What the model's first `C` output channels predict (ADM `ModelMeanType`; DiT
/// offers epsilon, or x0 with `predict_xstart`).
public enum ModelMeanType: Equatable { case epsilon, startX }

/// The variance of p(x_{t-1} | x_t) (ADM `ModelVarType`).
public enum ModelVarType: Equatable {
    /// The model's extra `C` channels v in [-1, 1] interpolate the log variance
    /// between the posterior's (clipped) and beta: frac = (v + 1) / 2.
    case learnedRange
    /// The posterior variance.
    case fixedSmall
    /// beta_t, with the first step's replaced by the posterior variance of step 1.
    case fixedLarge
}

/// ADM `LossType`.
public enum LossType: Equatable {
    case mse, rescaledMSE, kl, rescaledKL
    var isVB: Bool { self == .kl || self == .rescaledKL }
}

/// ADM's `GaussianDiffusion` over a possibly respaced chain (`SpacedDiffusion`):
/// every schedule array is float64, as the reference's numpy arrays.
public struct GaussianDiffusion {
    public let meanType: ModelMeanType
    public let varType: ModelVarType
    public let lossType: LossType
    /// The betas of this (respaced) chain.
    public let betas: [Double]
    /// Chain step → timestep of the original chain, fed to the model
    /// (the reference's `_WrappedModel`). Identity when not respaced.
    public let timestepMap: [Int]
    public let originalNumSteps: Int

    public let alphasCumprod: [Double]
    public let alphasCumprodPrev: [Double]
    public let sqrtAlphasCumprod: [Double]
    public let sqrtOneMinusAlphasCumprod: [Double]
    public let sqrtRecipAlphasCumprod: [Double]
    public let sqrtRecipm1AlphasCumprod: [Double]
    public let posteriorVariance: [Double]
    public let posteriorLogVarianceClipped: [Double]
    public let posteriorMeanCoef1: [Double]
    public let posteriorMeanCoef2: [Double]
    public let logBetas: [Double]

    public var numTimesteps: Int { betas.count }

    /// A chain over `betas` directly (no respacing).
    public init(betas: [Double], meanType: ModelMeanType = .epsilon, varType: ModelVarType = .learnedRange,
                lossType: LossType = .mse) throws {
        try self.init(betas: betas, timestepMap: Array(0..<betas.count), originalNumSteps: betas.count,
                      meanType: meanType, varType: varType, lossType: lossType)
    }

    /// `SpacedDiffusion(use_timesteps, betas=...)`: keeps the steps in `use`, with
    /// betas 1 - alphā_i / alphā_prev so the kept steps have the original alphā.
    public init(betas base: [Double], keeping use: [Int], meanType: ModelMeanType = .epsilon,
                varType: ModelVarType = .learnedRange, lossType: LossType = .mse) throws {
        let keep = Set(use)
        var last = 1.0
        var acp = 1.0
        var newBetas: [Double] = []
        var map: [Int] = []
        for (i, b) in base.enumerated() {
            acp *= 1.0 - b  // np.cumprod: sequential products
            if keep.contains(i) {
                newBetas.append(1 - acp / last)
                last = acp
                map.append(i)
            }
        }
        guard !newBetas.isEmpty else { throw DiffusionError.invalidArgument("respacing keeps no timesteps") }
        try self.init(betas: newBetas, timestepMap: map, originalNumSteps: base.count,
                      meanType: meanType, varType: varType, lossType: lossType)
    }

    init(betas: [Double], timestepMap: [Int], originalNumSteps: Int,
         meanType: ModelMeanType, varType: ModelVarType, lossType: LossType) throws {
        guard !betas.isEmpty, betas.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
            throw DiffusionError.invalidArgument("betas must be non-empty and in (0, 1]")
        }
        self.betas = betas
        self.timestepMap = timestepMap
        self.originalNumSteps = originalNumSteps
        self.meanType = meanType
        self.varType = varType
        self.lossType = lossType
        let n = betas.count
        var acp = [Double](repeating: 0, count: n)
        var run = 1.0
        for i in 0..<n { run *= 1.0 - betas[i]; acp[i] = run }
        alphasCumprod = acp
        alphasCumprodPrev = [1.0] + acp.dropLast()
        sqrtAlphasCumprod = acp.map { $0.squareRoot() }
        sqrtOneMinusAlphasCumprod = acp.map { (1.0 - $0).squareRoot() }
        sqrtRecipAlphasCumprod = acp.map { (1.0 / $0).squareRoot() }
        sqrtRecipm1AlphasCumprod = acp.map { (1.0 / $0 - 1).squareRoot() }
        let prev = alphasCumprodPrev
        posteriorVariance = (0..<n).map { (i: Int) -> Double in betas[i] * (1.0 - prev[i]) / (1.0 - acp[i]) }
        // The posterior variance is 0 at t = 0: the reference clips the log by
        // repeating step 1's value there (and leaves a 1-step chain empty).
        posteriorLogVarianceClipped = n > 1
            ? ([posteriorVariance[1]] + posteriorVariance.dropFirst()).map { Foundation.log($0) } : []
        posteriorMeanCoef1 = (0..<n).map { (i: Int) -> Double in betas[i] * prev[i].squareRoot() / (1.0 - acp[i]) }
        posteriorMeanCoef2 = (0..<n).map { (i: Int) -> Double in
            let alpha: Double = 1.0 - betas[i]
            return (1.0 - prev[i]) * alpha.squareRoot() / (1.0 - acp[i])
        }
        logBetas = betas.map { Foundation.log($0) }
    }

    /// DiT's `create_diffusion(timestep_respacing, noise_schedule, use_kl,
    /// sigma_small, predict_xstart, learn_sigma, rescale_learned_sigmas,
    /// diffusion_steps)`. A nil respacing means the full chain.
    public static func create(respacing: Respacing?, schedule: NoiseSchedule = .linear, useKL: Bool = false,
                              sigmaSmall: Bool = false, predictXstart: Bool = false, learnSigma: Bool = true,
                              rescaleLearnedSigmas: Bool = false, diffusionSteps: Int = 1000) throws -> GaussianDiffusion {
        let base = try schedule.betas(steps: diffusionSteps)
        let loss: LossType = useKL ? .rescaledKL : (rescaleLearnedSigmas ? .rescaledMSE : .mse)
        let keep = try (respacing ?? .sections([diffusionSteps])).timesteps(of: diffusionSteps)
        return try GaussianDiffusion(
            betas: base, keeping: keep, meanType: predictXstart ? .startX : .epsilon,
            varType: learnSigma ? .learnedRange : (sigmaSmall ? .fixedSmall : .fixedLarge), lossType: loss)
    }

    /// Reference quirk (`_extract_into_tensor`): the schedule lives in float64 and
    /// each coefficient is indexed there and then cast to float32
    /// (`th.from_numpy(arr)[timesteps].float()`); all tensor arithmetic after that
    /// is float32. Derived arrays (log betas, 1 - alphā) are formed in float64
    /// before the cast, as the reference does.
    @inline(__always)
    public static func coefficient(_ array: [Double], _ t: Int) -> Float { Float(array[t]) }

    /// The original-chain timestep fed to the model for chain step `t`.
    public func modelTimestep(_ t: Int) -> Float { Float(timestepMap[t]) }

    func checkTimesteps(_ t: [Int], batch: Int) throws {
        guard t.count == batch else {
            throw DiffusionError.invalidArgument("\(t.count) timesteps for a batch of \(batch)")
        }
        for v in t where v < 0 || v >= numTimesteps {
            throw DiffusionError.invalidArgument("timestep \(v) outside the chain's 0..<\(numTimesteps)")
        }
    }

    /// `q_sample`: sqrt(alphā_t) x0 + sqrt(1 - alphā_t) noise, per row's t.
    public func qSample(_ x0: Tensor, t: [Int], noise: Tensor) throws -> Tensor {
        guard noise.shape == x0.shape, x0.rank >= 1 else {
            throw DiffusionError.shapeMismatch(what: "q_sample noise", expected: x0.shape, found: noise.shape)
        }
        try checkTimesteps(t, batch: x0.shape[0])
        let out = Tensor(uninitialized: x0.shape)
        let per = x0.count / max(x0.shape[0], 1)
        for b in 0..<x0.shape[0] {
            let c1 = Self.coefficient(sqrtAlphasCumprod, t[b])
            let c2 = Self.coefficient(sqrtOneMinusAlphasCumprod, t[b])
            let x = x0.data + b * per, e = noise.data + b * per, o = out.data + b * per
            for i in 0..<per { o[i] = c1 * x[i] + c2 * e[i] }
        }
        return out
    }
}
