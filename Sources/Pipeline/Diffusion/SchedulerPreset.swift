import Foundation

/// The named diffusers samplers of `--sampler` (the names of the `samplers/tiny` fixture), each
/// a scheduler class with the configuration `from_config` resolves from DiT's base config
/// (linear betas 1e-4..0.02, 1000 steps). `--scheduler-config` overrides any option.
public enum SchedulerPreset: String, CaseIterable {
    /// DPM-Solver++(2M): `DPMSolverMultistepScheduler`, dpmsolver++, order 2.
    case dpmpp2m
    /// The same with Karras sigmas.
    case dpmpp2mKarras = "dpmpp2m_karras"
    /// DPM-Solver++(3M).
    case dpmpp3m
    /// `UniPCMultistepScheduler`, bh2, order 2.
    case unipc
    /// `EulerDiscreteScheduler`.
    case euler
    /// `HeunDiscreteScheduler` (two model calls per step but the last).
    case heun
    /// diffusers' `DDIMScheduler` with `set_alpha_to_one=False` (DiT's pipeline config).
    case ddimDiffusers = "ddim_diffusers"

    public var config: SchedulerConfig {
        switch self {
        case .dpmpp2m, .dpmpp2mKarras, .dpmpp3m:
            var c = SchedulerConfig(scheduler: .dpmSolverMultistep)
            c.solverOrder = self == .dpmpp3m ? 3 : 2
            if self == .dpmpp2mKarras { c.sigmas = .karras }
            return c
        case .unipc: return SchedulerConfig(scheduler: .uniPCMultistep)
        case .euler: return SchedulerConfig(scheduler: .eulerDiscrete)
        case .heun: return SchedulerConfig(scheduler: .heunDiscrete)
        case .ddimDiffusers:
            var c = SchedulerConfig(scheduler: .ddim)
            c.setAlphaToOne = false
            return c
        }
    }

    /// The preset's config with a diffusers config JSON file applied over it.
    public func config(overridesFile path: String?) throws -> SchedulerConfig {
        var c = config
        guard let path else { return c }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DiffusionError.invalidArgument("scheduler config \(path): unreadable (\(error.localizedDescription))")
        }
        try c.apply(jsonData: data, source: path)
        return c
    }
}

extension SchedulerConfig {
    /// `apply(json:)` on JSON text; diffusers writes a bare `-Infinity` for `lambda_min_clipped`,
    /// which strict JSON lacks, so it is read as the string "-Infinity" (as this port writes it).
    public mutating func apply(jsonData data: Data, source: String) throws {
        let text = String(decoding: data, as: UTF8.self)
            .replacingOccurrences(of: #"(?<!")(-?Infinity)(?!")"#, with: "\"$1\"", options: .regularExpression)
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw DiffusionError.invalidArgument("\(source): not a JSON object (a diffusers scheduler config)")
        }
        // `_class_name` is not checked: diffusers' `X.from_config(other.config)` takes
        // another class's config (DiT pipelines swap schedulers that way).
        try apply(json: obj, source: source)
    }
}
