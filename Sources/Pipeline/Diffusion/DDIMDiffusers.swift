import Foundation
import PipelineTensor

/// diffusers' `DDIMScheduler` (eta 0, as `DiTPipeline` calls `step`), on diffusers' float32
/// `alphas_cumprod`; distinct from ADM's DDIM (`--sampler ddim`, float64 respaced chain).
///
/// Reference quirks copied here (tests in `SchedulerScheduleTests`):
/// - the previous timestep is always t - num_train_timesteps // steps, whatever the spacing,
///   so linspace and trailing spacings step to timesteps not in the schedule;
/// - below t = 0 the "previous" alphā is 1 with `set_alpha_to_one`, else alphā_0
///   (DiT's config: false).
struct DDIMDiffusers: DiffusersScheduler {
    let config: SchedulerConfig
    let timesteps: [Double]
    let alphasCumprod: [Float]
    /// `num_inference_steps` as passed (the previous-timestep stride uses it).
    let steps: Int

    var callTimesteps: [Double] { timesteps }

    init(config c: SchedulerConfig, steps n: Int) throws {
        try c.validate()
        let T = c.numTrainTimesteps
        guard n <= T else { throw DiffusionError.invalidArgument("DDIMScheduler: \(n) steps exceed the \(T) training timesteps") }
        alphasCumprod = try SchedulerTrainingSchedule(c).alphasCumprod
        steps = n
        switch c.timestepSpacing {
        case .linspace:
            timesteps = SchedulerNumPy.linspace(0, Double(T - 1), n).map(SchedulerNumPy.round).reversed()
        case .leading:
            timesteps = (0..<n).map { Double($0 * (T / n) + c.stepsOffset) }.reversed()
        case .trailing:
            timesteps = SchedulerNumPy.arange(Double(T), 0, -Double(T) / Double(n)).map { SchedulerNumPy.round($0) - 1 }
        }
        if let bad = timesteps.first(where: { $0 < 0 || $0 >= Double(T) }) {
            throw DiffusionError.invalidArgument(
                "DDIMScheduler: timestep \(Int(bad)) (steps_offset \(c.stepsOffset)) is outside the \(T) training timesteps")
        }
        config = c
    }

    func makeState() -> SchedulerState { State(self) }

    final class State: SchedulerState {
        let s: DDIMDiffusers
        init(_ s: DDIMDiffusers) { self.s = s }

        func step(eps: Tensor, call i: Int, sample: Tensor) throws -> Tensor {
            let c = s.config
            let t = Int(s.timesteps[i])
            let prev = t - c.numTrainTimesteps / s.steps
            let a = s.alphasCumprod[t]
            let aPrev = prev >= 0 ? s.alphasCumprod[prev] : (c.setAlphaToOne ? 1 : s.alphasCumprod[0])
            let beta = 1 - a
            let sqrtBeta = beta.squareRoot(), sqrtA = a.squareRoot()
            // eta = 0: std_dev_t = 0 · variance ** 0.5, so the direction is sqrt(1 - alphā_prev - 0).
            let direction = (1 - aPrev - 0).squareRoot(), sqrtPrev = aPrev.squareRoot()
            let clip = c.clipSample ? Float(c.clipSampleRange) : nil
            return try SchedulerMath.map(sample, eps) { x, e in
                var x0 = (x - sqrtBeta * e) / sqrtA
                if let clip { x0 = min(max(x0, -clip), clip) }
                return sqrtPrev * x0 + direction * e
            }
        }
    }
}
