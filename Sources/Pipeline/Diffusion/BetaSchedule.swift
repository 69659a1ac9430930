import Foundation

/// The named beta schedules of ADM's `get_named_beta_schedule`, in float64 as the
/// reference computes them (numpy float64; coefficients are cast to float32 only
/// where they meet a tensor, see `GaussianDiffusion.coefficient`).
public enum NoiseSchedule: String, CaseIterable {
    /// Ho et al.'s linear schedule, 1e-4 to 0.02 scaled by 1000 / steps.
    case linear
    /// Nichol & Dhariwal's cosine schedule (`squaredcos_cap_v2`), betas capped at 0.999.
    case cosine = "squaredcos_cap_v2"

    public init(parsing s: String) throws {
        switch s.lowercased() {
        case "linear": self = .linear
        case "cosine", "squaredcos_cap_v2": self = .cosine
        default: throw DiffusionError.invalidSchedule(s)
        }
    }

    public func betas(steps: Int) throws -> [Double] {
        guard steps > 0 else { throw DiffusionError.invalidArgument("diffusion steps must be positive, got \(steps)") }
        switch self {
        case .linear:
            let scale = 1000.0 / Double(steps)
            return NoiseSchedule.linspace(scale * 0.0001, scale * 0.02, steps)
        case .cosine:
            func alphaBar(_ t: Double) -> Double {
                let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
                return c * c
            }
            return (0..<steps).map { i in
                let t1 = Double(i) / Double(steps), t2 = Double(i + 1) / Double(steps)
                return min(1 - alphaBar(t2) / alphaBar(t1), 0.999)
            }
        }
    }

    /// `np.linspace(start, stop, n)` with numpy's arithmetic: `start + i * step`
    /// with `step = (stop - start) / (n - 1)`, and the last value set to `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ n: Int) -> [Double] {
        if n == 1 { return [start] }
        let step = (stop - start) / Double(n - 1)
        var out = (0..<n).map { start + Double($0) * step }
        out[n - 1] = stop
        return out
    }
}
