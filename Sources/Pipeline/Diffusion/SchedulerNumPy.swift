import Foundation

/// The NumPy arithmetic diffusers' `set_timesteps` runs in float64, reproduced operation by
/// operation so the timesteps match to the last bit.
enum SchedulerNumPy {
    /// `np.linspace(start, stop, n)` (float64): start + i·step, the last set to stop.
    static func linspace(_ start: Double, _ stop: Double, _ n: Int) -> [Double] {
        n <= 0 ? [] : NoiseSchedule.linspace(start, stop, n)
    }

    /// `np.round` (half to even).
    static func round(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

    /// `np.arange(start, stop, step)` with a float step. Quirk: NumPy fills element i >= 2 as
    /// start + i·delta with delta = (start + step) - start, not with step itself.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        var out = [start]
        if length > 1 { out.append(start + step) }
        let delta = (start + step) - start
        for i in stride(from: 2, to: length, by: 1) { out.append(start + Double(i) * delta) }
        return out
    }

    /// `np.interp(x, np.arange(len(fp)), fp)` for one x (float64): fp[j] at a knot, else
    /// slope·(x - j) + fp[j] with slope = (fp[j+1] - fp[j]) / 1.
    static func interp(_ x: Double, _ fp: [Double]) -> Double {
        let n = fp.count
        if x.isNaN { return x }
        if x < 0 { return fp[0] }
        if x > Double(n - 1) { return fp[n - 1] }
        let j = Int(x.rounded(.down))
        if j == n - 1 || Double(j) == x { return fp[j] }
        let slope = (fp[j + 1] - fp[j]) / (Double(j + 1) - Double(j))
        return slope * (x - Double(j)) + fp[j]
    }

    /// `_sigma_to_t(sigma, log_sigmas)`: the fractional training timestep of `sigma`, by linear
    /// interpolation in log sigma. Quirk: `log_sigmas` is float32, so `low - high` is a float32
    /// subtraction while `low - log_sigma` is float64; low is the last index whose log sigma
    /// is <= log(sigma) (`cumsum(...).argmax()`), 0 if none, at most n - 2.
    static func sigmaToT(_ sigma: Double, logSigmas: [Float]) -> Double {
        let logSigma = Foundation.log(max(sigma, 1e-10))
        var low = 0
        for (i, l) in logSigmas.enumerated() where logSigma - Double(l) >= 0 { low = i }
        low = min(low, logSigmas.count - 2)
        let lo = logSigmas[low], hi = logSigmas[low + 1]
        var w = (Double(lo) - logSigma) / Double(lo - hi)
        w = min(max(w, 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }

    /// `_convert_to_karras`: rho = 7 spacing between the end points (float64).
    static func karras(sigmaMin: Double, sigmaMax: Double, _ n: Int) -> [Double] {
        let rho = 7.0
        let minInv = Foundation.pow(sigmaMin, 1 / rho), maxInv = Foundation.pow(sigmaMax, 1 / rho)
        return linspace(0, 1, n).map { Foundation.pow(maxInv + $0 * (minInv - maxInv), rho) }
    }

    /// `_convert_to_exponential`: exp of a linspace of the logs.
    static func exponential(sigmaMin: Double, sigmaMax: Double, _ n: Int) -> [Double] {
        linspace(Foundation.log(sigmaMax), Foundation.log(sigmaMin), n).map { Foundation.exp($0) }
    }
}

/// Timestep spacing and sigma rules shared by the diffusers schedulers.
enum SchedulerSpacing {
    /// The integer inference timesteps DPM-Solver and UniPC use (`n + 1` points, the last
    /// dropped), descending. `last` is the exclusive upper end (num_train_timesteps, or
    /// DPM-Solver's `lambda_min_clipped` cut).
    static func multistep(_ c: SchedulerConfig, steps n: Int, last: Int) throws -> [Double] {
        let T = c.numTrainTimesteps
        switch c.timestepSpacing {
        case .linspace:
            return Array(SchedulerNumPy.linspace(0, Double(last - 1), n + 1).map(SchedulerNumPy.round).reversed().dropLast())
        case .leading:
            let ratio = last / (n + 1)
            return Array((0...n).map { Double($0 * ratio + c.stepsOffset) }.reversed().dropLast())
        case .trailing:
            let ratio = Double(T) / Double(n)
            return SchedulerNumPy.arange(Double(last), 0, -ratio).map { SchedulerNumPy.round($0) - 1 }
        }
    }

    /// The float32 inference timesteps Euler and Heun use (`n` points), descending.
    static func discrete(_ c: SchedulerConfig, steps n: Int) -> [Double] {
        let T = c.numTrainTimesteps
        let values: [Double]
        switch c.timestepSpacing {
        case .linspace:
            values = SchedulerNumPy.linspace(0, Double(T - 1), n).reversed()
        case .leading:
            let ratio = T / n
            values = (0..<n).map { Double($0 * ratio) }.reversed().map { Double(Float($0) + Float(c.stepsOffset)) }
        case .trailing:
            values = SchedulerNumPy.arange(Double(T), 0, -Double(T) / Double(n)).map { Double(Float(SchedulerNumPy.round($0)) - 1) }
        }
        return values.map { Double(Float($0)) }
    }

    /// The interpolated float64 sigmas at `timesteps`, from the float32 training sigmas.
    static func interpolated(_ timesteps: [Double], _ schedule: SchedulerTrainingSchedule) -> [Double] {
        let fp = schedule.sigmas.map(Double.init)
        return timesteps.map { SchedulerNumPy.interp($0, fp) }
    }

    /// Karras or exponential sigmas between `lo` and `hi` and their (unrounded) timesteps by
    /// `_sigma_to_t`; nil for interpolated sigmas.
    static func respaced(_ c: SchedulerConfig, lo: Double, hi: Double, steps n: Int,
                         logSigmas: [Float]) -> (sigmas: [Double], timesteps: [Double])? {
        let s: [Double]
        switch c.sigmas {
        case .interpolated: return nil
        case .karras: s = SchedulerNumPy.karras(sigmaMin: lo, sigmaMax: hi, n)
        case .exponential: s = SchedulerNumPy.exponential(sigmaMin: lo, sigmaMax: hi, n)
        }
        return (s, s.map { SchedulerNumPy.sigmaToT($0, logSigmas: logSigmas) })
    }

    /// `sigma_last` for `final_sigmas_type="sigma_min"`: sqrt((1 - alphā_0) / alphā_0) in float32.
    static func sigmaMinLast(_ schedule: SchedulerTrainingSchedule) -> Double {
        Double(schedule.sigmas[0])
    }

    /// The first step's index: diffusers' `index_for_timestep` takes the second match when the
    /// first timestep occurs twice, which would run past the schedule's end; refused here.
    static func checkFirstTimestepUnique(_ timesteps: [Double], _ c: SchedulerConfig, steps: Int) throws {
        guard let t0 = timesteps.first else {
            throw DiffusionError.invalidArgument("\(c.scheduler.rawValue): \(steps) steps give no timesteps")
        }
        if timesteps.filter({ $0 == t0 }).count > 1 {
            throw DiffusionError.invalidArgument(
                "\(c.scheduler.rawValue): \(steps) steps repeat the first timestep \(t0); diffusers would start at the second and run past the end")
        }
    }
}
