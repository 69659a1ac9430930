import Foundation
import PipelineTensor

/// diffusers' `UniPCMultistepScheduler` (Zhao et al., UniPC): the UniP predictor and the UniC
/// corrector (applied at the start of each step with the new model output), B(h) `bh1` or
/// `bh2`, x0 or eps prediction, as `set_timesteps` and `step` compute them.
///
/// Reference quirks copied here (tests in `SchedulerScheduleTests`):
/// - unlike DPM-Solver, `lower_order_final` lowers the order near the end at any step count;
/// - the predictor's order-2 coefficient is fixed at 0.5, other orders solve R·rho = b in
///   float32 (`torch.linalg.solve`); the corrector at order 1 uses 0.5;
/// - the Karras timesteps are rounded, the exponential ones truncated to int64.
struct UniPCMultistep: DiffusersScheduler {
    let config: SchedulerConfig
    let timesteps: [Double]
    let sigmas: [Float]

    var callTimesteps: [Double] { timesteps }

    init(config c: SchedulerConfig, steps n: Int) throws {
        try c.validate()
        let schedule = try SchedulerTrainingSchedule(c)
        let T = c.numTrainTimesteps
        var t = try SchedulerSpacing.multistep(c, steps: n, last: T)
        let train = schedule.sigmas
        let logSigmas = schedule.logSigmas
        var s: [Double]
        var sigmaLast: Double
        if let r = SchedulerSpacing.respaced(c, lo: c.sigmaMin ?? Double(train[0]), hi: c.sigmaMax ?? Double(train[T - 1]),
                                             steps: n, logSigmas: logSigmas) {
            s = r.sigmas
            t = c.sigmas == .karras ? r.timesteps.map(SchedulerNumPy.round) : r.timesteps
            // Quirk: here sigma_min means the last spaced sigma, not the training sigma at t = 0.
            sigmaLast = c.finalSigmas == .sigmaMin ? s[s.count - 1] : 0
        } else {
            s = SchedulerSpacing.interpolated(t, schedule)
            sigmaLast = c.finalSigmas == .sigmaMin ? SchedulerSpacing.sigmaMinLast(schedule) : 0
        }
        timesteps = t.map { Double(Int64($0)) }
        sigmas = (s + [sigmaLast]).map { Float($0) }
        config = c
        try SchedulerSpacing.checkFirstTimestepUnique(timesteps, c, steps: n)
    }

    func makeState() -> SchedulerState { State(self) }

    /// The order of step `i` of `n` after `warm` earlier steps. Quirk: unlike DPM-Solver,
    /// `lower_order_final` caps the order at the steps left whatever the step count.
    static func order(step i: Int, of n: Int, warm: Int, _ c: SchedulerConfig) -> Int {
        min(c.lowerOrderFinal ? min(c.solverOrder, n - i) : c.solverOrder, warm + 1)
    }

    final class State: SchedulerState {
        let s: UniPCMultistep
        var outputs: [Tensor?]
        var lowerOrderNums = 0
        var lastSample: Tensor?
        var thisOrder = 1

        init(_ s: UniPCMultistep) {
            self.s = s
            outputs = [Tensor?](repeating: nil, count: s.config.solverOrder)
        }

        func step(eps: Tensor, call i: Int, sample: Tensor) throws -> Tensor {
            let c = s.config, n = s.timesteps.count
            let useCorrector = i > 0 && !c.disableCorrector.contains(i - 1) && lastSample != nil
            let converted: Tensor
            if c.predictX0 {
                let a = AlphaSigma(s.sigmas[i])
                converted = try SchedulerMath.map(sample, eps) { ($0 - a.sigma * $1) / a.alpha }
            } else {
                converted = eps
            }
            var x = sample
            if useCorrector, let last = lastSample {
                x = try update(i: i, corrector: converted, x: last, order: thisOrder)
            }
            for k in 0..<(c.solverOrder - 1) { outputs[k] = outputs[k + 1] }
            outputs[c.solverOrder - 1] = converted
            thisOrder = UniPCMultistep.order(step: i, of: n, warm: lowerOrderNums, c)
            lastSample = x
            let prev = try update(i: i, corrector: nil, x: x, order: thisOrder)
            if lowerOrderNums < c.solverOrder { lowerOrderNums += 1 }
            return prev
        }

        /// `multistep_uni_p_bh_update` (corrector nil: from step i to i + 1) or
        /// `multistep_uni_c_bh_update` (corrector = this step's converted output: corrects the
        /// step from i - 1 to i, `x` the sample at i - 1).
        private func update(i: Int, corrector modelT: Tensor?, x: Tensor, order: Int) throws -> Tensor {
            let c = s.config
            let isC = modelT != nil
            let to = isC ? i : i + 1, from = isC ? i - 1 : i
            let m0 = outputs[outputs.count - 1]!
            let t = AlphaSigma(s.sigmas[to]), s0 = AlphaSigma(s.sigmas[from])
            let h = t.lambda - s0.lambda
            var rks: [Float] = []
            var d1s: [Tensor] = []
            for k in 1..<max(order, 1) {
                let si = isC ? i - (k + 1) : i - k
                let mi = outputs[outputs.count - 1 - k]!
                let rk = (AlphaSigma(s.sigmas[si]).lambda - s0.lambda) / h
                rks.append(rk)
                d1s.append(try SchedulerMath.map(mi, m0) { ($0 - $1) / rk })
            }
            rks.append(1)
            let hh = c.predictX0 ? -h : h
            let hPhi1 = Foundation.expm1(hh)
            var hPhiK = hPhi1 / hh - 1
            var factorial = 1
            let bH = c.solverType == "bh1" ? hh : Foundation.expm1(hh)
            var R: [[Float]] = []
            var b: [Float] = []
            for k in 1...order {
                R.append(rks.map { Self.pow($0, k - 1) })
                b.append(hPhiK * Float(factorial) / bH)
                factorial *= k + 1
                hPhiK = hPhiK / hh - Float(1.0 / Double(factorial))
            }
            let (cx, cm) = c.predictX0 ? (t.sigma / s0.sigma, t.alpha * hPhi1) : (t.alpha / s0.alpha, t.sigma * hPhi1)
            let cRes = c.predictX0 ? t.alpha * bH : t.sigma * bH
            let base = try SchedulerMath.map(x, m0) { cx * $0 - cm * $1 }
            if let modelT {
                let rhos: [Float] = order == 1 ? [0.5] : try Self.solve(R, b)
                let dt = try SchedulerMath.map(modelT, m0) { $0 - $1 }
                let last = rhos[rhos.count - 1]
                let res = d1s.isEmpty ? SchedulerMath.map(dt) { last * $0 }
                    : try SchedulerMath.map(try Self.combine(Array(rhos.dropLast()), d1s), dt) { $0 + last * $1 }
                return try SchedulerMath.map(base, res) { $0 - cRes * $1 }
            }
            guard !d1s.isEmpty else { return base }
            let rhos: [Float] = order == 2 ? [0.5] : try Self.solve(Array(R.dropLast().map { Array($0.dropLast()) }), Array(b.dropLast()))
            let res = try Self.combine(rhos, d1s)
            return try SchedulerMath.map(base, res) { $0 - cRes * $1 }
        }

        /// `torch.einsum("k,bkc...->bc...", rhos, D1s)`: sum over k in order.
        static func combine(_ rhos: [Float], _ ds: [Tensor]) throws -> Tensor {
            var acc = SchedulerMath.map(ds[0]) { rhos[0] * $0 }
            for k in 1..<ds.count {
                let r = rhos[k]
                acc = try SchedulerMath.map(acc, ds[k]) { $0 + r * $1 }
            }
            return acc
        }

        /// `torch.pow(rks, e)` in float32 (PyTorch special-cases exponents 0 to 3).
        static func pow(_ x: Float, _ e: Int) -> Float {
            switch e {
            case 0: return 1
            case 1: return x
            case 2: return x * x
            case 3: return x * x * x
            default: return Foundation.pow(x, Float(e))
            }
        }

        /// `torch.linalg.solve` in float32: LU with partial pivoting (LAPACK getrf/getrs).
        static func solve(_ a: [[Float]], _ b: [Float]) throws -> [Float] {
            var m = a, y = b
            let n = b.count
            for j in 0..<n {
                var p = j
                for r in j..<n where abs(m[r][j]) > abs(m[p][j]) { p = r }
                guard m[p][j] != 0 else { throw DiffusionError.invalidArgument("UniPC: singular order conditions (repeated timesteps?)") }
                m.swapAt(p, j)
                y.swapAt(p, j)
                let inv = 1 / m[j][j]
                for r in (j + 1)..<max(n, j + 1) {
                    let l = m[r][j] * inv
                    m[r][j] = l
                    for k in (j + 1)..<n { m[r][k] -= l * m[j][k] }
                }
            }
            for r in 0..<n { for k in 0..<r { y[r] -= m[r][k] * y[k] } }
            var x = [Float](repeating: 0, count: n)
            for r in stride(from: n - 1, through: 0, by: -1) {
                var v = y[r]
                for k in (r + 1)..<n { v -= m[r][k] * x[k] }
                x[r] = v / m[r][r]
            }
            return x
        }
    }
}
