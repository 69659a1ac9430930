import Foundation
import PipelineTensor

/// diffusers' `HeunDiscreteScheduler` (Karras et al. 2022, Algorithm 1 without churn): an
/// Euler step, then a second model call at its end point averages the two slopes. The last
/// step (to sigma 0) is Euler only, so n steps make 2n - 1 model calls.
///
/// Reference quirks copied here (tests in `SchedulerScheduleTests`): the sigmas and timesteps
/// are interleaved (`repeat_interleave(2)` of all but the first), the step index runs over
/// that list; the Karras timesteps stay fractional (float32); no `final_sigmas_type`.
struct HeunDiscrete: DiffusersScheduler {
    let config: SchedulerConfig
    /// The interleaved model-call timesteps (2n - 1) and sigmas (2n).
    let timesteps: [Double]
    let sigmas: [Float]

    var callTimesteps: [Double] { timesteps }
    var initNoiseSigma: Float { EulerDiscrete.initNoiseSigma(sigmas, config) }
    func inputDivisor(call i: Int) -> Float? { EulerDiscrete.inputDivisor(sigmas[i]) }

    init(config c: SchedulerConfig, steps n: Int) throws {
        try c.validate()
        let schedule = try SchedulerTrainingSchedule(c)
        var t = SchedulerSpacing.discrete(c, steps: n)
        var s = SchedulerSpacing.interpolated(t, schedule)
        let logSigmas = schedule.logSigmas
        // Heun's config has no sigma_min / sigma_max: the interpolated ends.
        if let r = SchedulerSpacing.respaced(c, lo: s[s.count - 1], hi: s[0], steps: n, logSigmas: logSigmas) { (s, t) = r }
        let f = (s + [0]).map { Float($0) }
        sigmas = [f[0]] + f[1..<(f.count - 1)].flatMap { [$0, $0] } + [f[f.count - 1]]
        let t32 = t.map { Double(Float($0)) }
        timesteps = [t32[0]] + t32.dropFirst().flatMap { [$0, $0] }
        config = c
        try SchedulerSpacing.checkFirstTimestepUnique(timesteps, c, steps: n)
    }

    func makeState() -> SchedulerState { State(self) }

    final class State: SchedulerState {
        let s: HeunDiscrete
        /// The first-order stage's derivative, dt and sample, while a second stage is due.
        var pending: (derivative: Tensor, dt: Float, sample: Tensor)?

        init(_ s: HeunDiscrete) { self.s = s }

        func step(eps: Tensor, call i: Int, sample: Tensor) throws -> Tensor {
            let clip = s.config.clipSample ? Float(s.config.clipSampleRange) : nil
            func x0(_ x: Float, _ e: Float, _ sigma: Float) -> Float {
                let p = x - sigma * e
                guard let clip else { return p }
                return min(max(p, -clip), clip)
            }
            if let first = pending {
                let sigmaNext = s.sigmas[i]
                pending = nil
                let d = try SchedulerMath.map(sample, eps, first.derivative) { x, e, d1 in
                    let d2 = (x - x0(x, e, sigmaNext)) / sigmaNext
                    return (d1 + d2) / 2
                }
                let dt = first.dt
                return try SchedulerMath.map(first.sample, d) { $0 + $1 * dt }
            }
            let sigma = s.sigmas[i], dt = s.sigmas[i + 1] - sigma
            let d = try SchedulerMath.map(sample, eps) { x, e in (x - x0(x, e, sigma)) / sigma }
            pending = (d, dt, sample)
            return try SchedulerMath.map(sample, d) { $0 + $1 * dt }
        }
    }
}
