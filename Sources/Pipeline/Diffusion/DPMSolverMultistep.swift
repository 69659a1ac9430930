import Foundation
import PipelineTensor

/// diffusers' `DPMSolverMultistepScheduler` with `algorithm_type="dpmsolver++"` (Lu et al.,
/// DPM-Solver++), orders 1 to 3, midpoint or heun second-order form, as `set_timesteps` and
/// `step` compute it.
///
/// Reference quirks copied here (tests in `SchedulerScheduleTests`):
/// - the timesteps are int64: Karras / lu-lambda timesteps are `np.round`ed unless the betas
///   are `squaredcos_cap_v2`, exponential ones truncated by `.to(int64)`;
/// - `lower_order_final` applies only below 15 steps, but `final_sigmas_type="zero"` forces a
///   first-order last step whatever the step count;
/// - `variance_type` learned / learned_range keeps the first 3 channels of the model output.
struct DPMSolverMultistep: DiffusersScheduler {
    let config: SchedulerConfig
    /// The integer timesteps (as float64).
    let timesteps: [Double]
    /// n + 1 float32 sigmas, the last the final sigma.
    let sigmas: [Float]

    var callTimesteps: [Double] { timesteps }

    init(config c: SchedulerConfig, steps n: Int) throws {
        try c.validate()
        let schedule = try SchedulerTrainingSchedule(c)
        let T = c.numTrainTimesteps
        // lambda_t = log(sqrt(alphā)) - log(sqrt(1 - alphā)) in float32; torch.searchsorted of
        // lambda_min_clipped in the flipped (ascending) lambdas cuts the top timesteps.
        let cut = Float(c.lambdaMinClipped)
        let flipped = schedule.alphasCumprod.reversed().map {
            Foundation.log($0.squareRoot()) - Foundation.log((1 - $0).squareRoot())
        }
        let clipped = flipped.firstIndex(where: { !($0 < cut) }) ?? flipped.count
        let last = T - clipped
        guard last > 0 else { throw DiffusionError.invalidArgument("lambda_min_clipped \(c.lambdaMinClipped) cuts every timestep") }
        var t = try SchedulerSpacing.multistep(c, steps: n, last: last)
        let trainSigmas = schedule.sigmas
        let logSigmas = schedule.logSigmas
        let descending = trainSigmas.reversed().map(Double.init)
        var s: [Double]
        if c.sigmas == .interpolated && !c.useLuLambdas {
            s = SchedulerSpacing.interpolated(t, schedule)
        } else {
            if c.sigmas == .karras {
                s = SchedulerNumPy.karras(sigmaMin: descending[T - 1], sigmaMax: descending[0], n)
            } else if c.useLuLambdas {
                // _convert_to_lu: rho = 1 between the flipped float32 log sigmas' ends, then exp.
                let lmin = Double(logSigmas[0]), lmax = Double(logSigmas[T - 1])
                s = SchedulerNumPy.linspace(0, 1, n).map { Foundation.exp(lmax + $0 * (lmin - lmax)) }
            } else {
                s = SchedulerNumPy.exponential(sigmaMin: descending[T - 1], sigmaMax: descending[0], n)
            }
            t = s.map { SchedulerNumPy.sigmaToT($0, logSigmas: logSigmas) }
            let rounded = c.sigmas == .karras || c.useLuLambdas  // the exponential branch is not rounded
            if rounded, c.betaSchedule != .squaredcosCapV2 { t = t.map(SchedulerNumPy.round) }
        }
        let sigmaLast = c.finalSigmas == .sigmaMin ? SchedulerSpacing.sigmaMinLast(schedule) : 0
        // .to(torch.int64): truncation toward zero.
        timesteps = t.map { Double(Int64($0)) }
        sigmas = (s + [sigmaLast]).map { Float($0) }
        config = c
        try SchedulerSpacing.checkFirstTimestepUnique(timesteps, c, steps: n)
    }

    func makeState() -> SchedulerState { State(self) }

    /// The update order of step `i` of `n` after `warm` earlier steps (`lower_order_nums`).
    /// Quirk: `lower_order_final` lowers the last two steps only below 15 steps, but
    /// `final_sigmas_type="zero"` (or `euler_at_final`) makes the last step first order always.
    static func order(step i: Int, of n: Int, warm: Int, _ c: SchedulerConfig) -> Int {
        let lowerFinal = i == n - 1 && (c.eulerAtFinal || (c.lowerOrderFinal && n < 15) || c.finalSigmas == .zero)
        let lowerSecond = i == n - 2 && c.lowerOrderFinal && n < 15
        if c.solverOrder == 1 || warm < 1 || lowerFinal { return 1 }
        if c.solverOrder == 2 || warm < 2 || lowerSecond { return 2 }
        return 3
    }

    final class State: SchedulerState {
        let s: DPMSolverMultistep
        var outputs: [Tensor?]
        var lowerOrderNums = 0

        init(_ s: DPMSolverMultistep) {
            self.s = s
            outputs = [Tensor?](repeating: nil, count: s.config.solverOrder)
        }

        func step(eps: Tensor, call i: Int, sample: Tensor) throws -> Tensor {
            let c = s.config
            // variance_type learned(_range) takes model_output[:, :3]: a no-op on 3 channels,
            // a broadcasting error in diffusers on any other count, refused here.
            if let v = c.varianceType, eps.rank == 4, eps.shape[1] != 3 {
                throw DiffusionError.invalidArgument(
                    "variance_type \(v) keeps 3 output channels (diffusers' model_output[:, :3]); the model has \(eps.shape[1])")
            }
            let e = eps
            // convert_model_output (dpmsolver++, epsilon): x0 = (x - sigma_t eps) / alpha_t.
            let a = AlphaSigma(s.sigmas[i])
            let x0 = try SchedulerMath.map(sample, e) { ($0 - a.sigma * $1) / a.alpha }
            for k in 0..<(c.solverOrder - 1) { outputs[k] = outputs[k + 1] }
            outputs[c.solverOrder - 1] = x0
            let out: Tensor
            switch DPMSolverMultistep.order(step: i, of: s.timesteps.count, warm: lowerOrderNums, c) {
            case 1: out = try firstOrder(i, sample)
            case 2: out = try secondOrder(i, sample)
            default: out = try thirdOrder(i, sample)
            }
            if lowerOrderNums < c.solverOrder { lowerOrderNums += 1 }
            return out
        }

        private func m(_ back: Int) -> Tensor { outputs[outputs.count - 1 - back]! }

        private func firstOrder(_ i: Int, _ x: Tensor) throws -> Tensor {
            let t = AlphaSigma(s.sigmas[i + 1]), s0 = AlphaSigma(s.sigmas[i])
            let h = t.lambda - s0.lambda
            let c1 = t.sigma / s0.sigma, c2 = t.alpha * (Foundation.exp(-h) - 1)
            return try SchedulerMath.map(x, m(0)) { c1 * $0 - c2 * $1 }
        }

        private func secondOrder(_ i: Int, _ x: Tensor) throws -> Tensor {
            let t = AlphaSigma(s.sigmas[i + 1]), s0 = AlphaSigma(s.sigmas[i]), s1 = AlphaSigma(s.sigmas[i - 1])
            let h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda
            let r0 = h0 / h
            let k = 1 / r0
            let d1 = try SchedulerMath.map(m(0), m(1)) { k * ($0 - $1) }
            let c1 = t.sigma / s0.sigma, e = Foundation.exp(-h) - 1
            let c2 = t.alpha * e
            if s.config.solverType == "midpoint" {
                let c3 = 0.5 * c2
                return try SchedulerMath.map(x, m(0), d1) { c1 * $0 - c2 * $1 - c3 * $2 }
            }
            let c3 = t.alpha * (e / h + 1)
            return try SchedulerMath.map(x, m(0), d1) { c1 * $0 - c2 * $1 + c3 * $2 }
        }

        private func thirdOrder(_ i: Int, _ x: Tensor) throws -> Tensor {
            let t = AlphaSigma(s.sigmas[i + 1]), s0 = AlphaSigma(s.sigmas[i])
            let s1 = AlphaSigma(s.sigmas[i - 1]), s2 = AlphaSigma(s.sigmas[i - 2])
            let h = t.lambda - s0.lambda, h0 = s0.lambda - s1.lambda, h1 = s1.lambda - s2.lambda
            let r0 = h0 / h, r1 = h1 / h
            let k0 = 1 / r0, k1 = 1 / r1
            let d10 = try SchedulerMath.map(m(0), m(1)) { k0 * ($0 - $1) }
            let d11 = try SchedulerMath.map(m(1), m(2)) { k1 * ($0 - $1) }
            let q = r0 / (r0 + r1), p = 1 / (r0 + r1)
            let d1 = try SchedulerMath.map(d10, d11) { $0 + q * ($0 - $1) }
            let d2 = try SchedulerMath.map(d10, d11) { p * ($0 - $1) }
            let e = Foundation.exp(-h) - 1
            let c1 = t.sigma / s0.sigma, c2 = t.alpha * e, c3 = t.alpha * (e / h + 1)
            let c4 = t.alpha * ((e + h) / (h * h) - 0.5)
            let partial = try SchedulerMath.map(x, m(0), d1) { c1 * $0 - c2 * $1 + c3 * $2 }
            return try SchedulerMath.map(partial, d2) { $0 - c4 * $1 }
        }
    }
}
