import Foundation
import PipelineTensor

/// diffusers' `EulerDiscreteScheduler` (Karras et al. 2022, Algorithm 2 without churn): the
/// model sees x / sqrt(sigma² + 1) at a float32, usually fractional, timestep.
///
/// Reference quirks copied here (tests in `SchedulerScheduleTests`):
/// - `init_noise_sigma` is the largest sigma for linspace / trailing spacing, but
///   sqrt(sigma_max² + 1) for leading;
/// - `interpolation_type="log_linear"` spaces n + 1 sigmas with a float32 `torch.linspace`
///   and then appends the final sigma too, so the last step ends at the smallest spaced
///   sigma, not the final one;
/// - Karras / exponential sigmas are spaced from the interpolated sigmas' ends and their
///   timesteps are not rounded.
struct EulerDiscrete: DiffusersScheduler {
    let config: SchedulerConfig
    let timesteps: [Double]
    let sigmas: [Float]

    var callTimesteps: [Double] { timesteps }
    var initNoiseSigma: Float { Self.initNoiseSigma(sigmas, config) }
    func inputDivisor(call i: Int) -> Float? { Self.inputDivisor(sigmas[i]) }

    init(config c: SchedulerConfig, steps n: Int) throws {
        try c.validate()
        let schedule = try SchedulerTrainingSchedule(c)
        var t = SchedulerSpacing.discrete(c, steps: n)
        let train = schedule.sigmas
        let logSigmas = schedule.logSigmas
        var s: [Double]
        if c.interpolationType == "log_linear" {
            s = TorchLinspace.float32(Double(logSigmas[train.count - 1]), Double(logSigmas[0]), n + 1)
                .map { Double(Foundation.exp($0)) }
        } else {
            s = SchedulerSpacing.interpolated(t, schedule)
        }
        if let r = SchedulerSpacing.respaced(c, lo: c.sigmaMin ?? s[s.count - 1], hi: c.sigmaMax ?? s[0], steps: n,
                                             logSigmas: logSigmas) {
            (s, t) = r
        }
        let sigmaLast = c.finalSigmas == .sigmaMin ? SchedulerSpacing.sigmaMinLast(schedule) : 0
        timesteps = t.map { Double(Float($0)) }
        sigmas = (s + [sigmaLast]).map { Float($0) }
        config = c
        try SchedulerSpacing.checkFirstTimestepUnique(timesteps, c, steps: n)
    }

    /// `init_noise_sigma` of Euler and Heun (float32 tensor ops).
    static func initNoiseSigma(_ sigmas: [Float], _ c: SchedulerConfig) -> Float {
        let top = sigmas.max() ?? 0
        return c.timestepSpacing == .leading ? (top * top + 1).squareRoot() : top
    }

    /// `scale_model_input`: x / ((sigma ** 2 + 1) ** 0.5).
    static func inputDivisor(_ sigma: Float) -> Float { (sigma * sigma + 1).squareRoot() }

    func makeState() -> SchedulerState { State(self) }

    final class State: SchedulerState {
        let s: EulerDiscrete
        init(_ s: EulerDiscrete) { self.s = s }

        func step(eps: Tensor, call i: Int, sample: Tensor) throws -> Tensor {
            // s_churn = 0: gamma = 0, sigma_hat = sigma · (0 + 1) = sigma.
            let sigma = s.sigmas[i]
            let dt = s.sigmas[i + 1] - sigma
            return try SchedulerMath.map(sample, eps) { x, e in
                let x0 = x - sigma * e
                let derivative = (x - x0) / sigma
                return x + derivative * dt
            }
        }
    }
}
