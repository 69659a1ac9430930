import Foundation

/// The diffusers scheduler classes this pipeline ports (`diffusers/schedulers/scheduling_*.py`).
public enum SchedulerClass: String, CaseIterable, Codable {
    case dpmSolverMultistep = "DPMSolverMultistepScheduler"
    case uniPCMultistep = "UniPCMultistepScheduler"
    case eulerDiscrete = "EulerDiscreteScheduler"
    case heunDiscrete = "HeunDiscreteScheduler"
    case ddim = "DDIMScheduler"
}

/// diffusers' `beta_schedule`.
public enum SchedulerBetaSchedule: String, Codable {
    case linear, scaledLinear = "scaled_linear", squaredcosCapV2 = "squaredcos_cap_v2", exp
}

/// diffusers' `timestep_spacing` (Table 2 of "Common Diffusion Noise Schedules and Sample Steps are Flawed").
public enum TimestepSpacing: String, Codable { case linspace, leading, trailing }

/// diffusers' `final_sigmas_type`: the sigma the last step goes to.
public enum FinalSigmas: String, Codable { case zero, sigmaMin = "sigma_min" }

/// How the inference sigmas are spaced (the `use_*_sigmas` flags; at most one is set).
public enum SigmaSpacing: String, Codable {
    /// `np.interp` of the training sigmas at the spaced timesteps.
    case interpolated
    /// Karras et al. (2022) rho = 7 spacing (`use_karras_sigmas`).
    case karras
    /// Log-uniform (`use_exponential_sigmas`).
    case exponential
}

/// A diffusers scheduler configuration, as its `scheduler_config.json` (or the
/// fixture's `<name>_config`) resolves it: every option that changes the numbers is a
/// typed field; options outside the ported subset are refused by name.
public struct SchedulerConfig: Equatable {
    public var scheduler: SchedulerClass
    public var numTrainTimesteps = 1000
    public var betaStart = 0.0001
    public var betaEnd = 0.02
    public var betaSchedule = SchedulerBetaSchedule.linear
    public var trainedBetas: [Double]?
    public var rescaleBetasZeroSNR = false
    public var timestepSpacing = TimestepSpacing.linspace
    public var stepsOffset = 0
    public var sigmas = SigmaSpacing.interpolated
    /// DPM-Solver: uniform in log-SNR (`use_lu_lambdas`; Karras sigmas take precedence, as in
    /// diffusers' `set_timesteps`). The other classes have no such option and ignore it.
    public var useLuLambdas = false
    public var finalSigmas = FinalSigmas.zero
    /// Euler, UniPC: overrides of the Karras / exponential end points.
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    /// DPM-Solver and UniPC: the multistep order.
    public var solverOrder = 2
    /// DPM-Solver++ second-order form (`midpoint`, `heun`) or UniPC's B(h) (`bh1`, `bh2`).
    public var solverType = "midpoint"
    public var lowerOrderFinal = true
    /// DPM-Solver: first order at the last step whatever the step count.
    public var eulerAtFinal = false
    /// DPM-Solver: timesteps whose log-SNR is below this are cut off.
    public var lambdaMinClipped = -Double.infinity
    /// DPM-Solver: `learned`/`learned_range` keeps the first 3 output channels (its quirk).
    public var varianceType: String?
    /// UniPC: predict x0 (true) or eps (false) in the update.
    public var predictX0 = true
    /// UniPC: steps whose corrector is skipped.
    public var disableCorrector: [Int] = []
    /// Euler: `linear` (np.interp) or `log_linear` sigmas.
    public var interpolationType = "linear"
    /// DDIM: the "previous" alphā of the last step is 1 (true) or alphā_0 (false).
    public var setAlphaToOne = true
    /// DDIM, Heun: clamp the x0 prediction to ±`clipSampleRange`.
    public var clipSample = false
    public var clipSampleRange = 1.0

    public init(scheduler: SchedulerClass) {
        self.scheduler = scheduler
        switch scheduler {
        case .uniPCMultistep: solverType = "bh2"
        case .ddim: timestepSpacing = .leading
        default: break
        }
    }

    /// Reads diffusers' config JSON over `self` (keys absent keep their value). Keys starting
    /// with `_` are diffusers bookkeeping; unknown keys and unsupported values are errors.
    public mutating func apply(json: [String: Any], source: String) throws {
        func bad(_ key: String, _ why: String) -> DiffusionError {
            .invalidArgument("\(source): scheduler option \(key): \(why)")
        }
        // JSONSerialization boxes JSON booleans as __NSCFBoolean, numbers as NSNumber (which
        // also casts to Bool): told apart by the boxed type.
        func isBoolean(_ v: Any) -> Bool { v is Bool && String(describing: type(of: v)).contains("Boolean") }
        func number(_ k: String, _ v: Any) throws -> Double {
            if isBoolean(v) { throw bad(k, "expected a number, got \(v)") }
            if let n = v as? NSNumber { return n.doubleValue }
            if let s = v as? String, ["-Infinity", "Infinity"].contains(s) { return s.hasPrefix("-") ? -.infinity : .infinity }
            throw bad(k, "expected a number, got \(v)")
        }
        func integer(_ k: String, _ v: Any) throws -> Int {
            let d = try number(k, v)
            guard d == d.rounded(), abs(d) < 1e15 else { throw bad(k, "expected an integer, got \(d)") }
            return Int(d)
        }
        func bool(_ k: String, _ v: Any) throws -> Bool {
            guard isBoolean(v), let b = v as? Bool else { throw bad(k, "expected true or false, got \(v)") }
            return b
        }
        func string(_ k: String, _ v: Any) throws -> String {
            guard let s = v as? String else { throw bad(k, "expected a string, got \(v)") }
            return s
        }
        func choice<E: RawRepresentable>(_ k: String, _ v: Any, _: E.Type) throws -> E where E.RawValue == String {
            let s = try string(k, v)
            guard let e = E(rawValue: s) else { throw bad(k, "unsupported value \"\(s)\"") }
            return e
        }
        func isNull(_ v: Any) -> Bool { v is NSNull }
        func flag(_ k: String, _ v: Any, _ spacing: SigmaSpacing) throws {
            guard try bool(k, v) else { if sigmas == spacing { sigmas = .interpolated }; return }
            guard sigmas == .interpolated || sigmas == spacing else {
                throw bad(k, "only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be set")
            }
            sigmas = spacing
        }
        func refuseTrue(_ k: String, _ v: Any) throws {
            if try bool(k, v) { throw bad(k, "true is not supported") }
        }
        for (k, v) in json.sorted(by: { $0.key < $1.key }) where !k.hasPrefix("_") {
            switch k {
            case "num_train_timesteps": numTrainTimesteps = try integer(k, v)
            case "beta_start": betaStart = try number(k, v)
            case "beta_end": betaEnd = try number(k, v)
            case "beta_schedule": betaSchedule = try choice(k, v, SchedulerBetaSchedule.self)
            case "trained_betas":
                if isNull(v) { trainedBetas = nil } else {
                    guard let a = v as? [Any] else { throw bad(k, "expected a list of numbers") }
                    trainedBetas = try a.map { try number(k, $0) }
                }
            case "rescale_betas_zero_snr": rescaleBetasZeroSNR = try bool(k, v)
            case "timestep_spacing": timestepSpacing = try choice(k, v, TimestepSpacing.self)
            case "steps_offset": stepsOffset = try integer(k, v)
            case "use_karras_sigmas": try flag(k, v, .karras)
            case "use_exponential_sigmas": try flag(k, v, .exponential)
            case "use_lu_lambdas": useLuLambdas = try bool(k, v)
            case "use_beta_sigmas", "use_flow_sigmas", "thresholding", "use_dynamic_shifting": try refuseTrue(k, v)
            case "final_sigmas_type": finalSigmas = try choice(k, v, FinalSigmas.self)
            case "sigma_min": sigmaMin = isNull(v) ? nil : try number(k, v)
            case "sigma_max": sigmaMax = isNull(v) ? nil : try number(k, v)
            case "solver_order": solverOrder = try integer(k, v)
            case "solver_type": solverType = try string(k, v)
            case "lower_order_final": lowerOrderFinal = try bool(k, v)
            case "euler_at_final": eulerAtFinal = try bool(k, v)
            case "lambda_min_clipped": lambdaMinClipped = try number(k, v)
            case "variance_type": varianceType = isNull(v) ? nil : try string(k, v)
            case "predict_x0": predictX0 = try bool(k, v)
            case "disable_corrector":
                guard let a = v as? [Any] else { throw bad(k, "expected a list of step indices") }
                disableCorrector = try a.map { try integer(k, $0) }
            case "interpolation_type": interpolationType = try string(k, v)
            case "set_alpha_to_one": setAlphaToOne = try bool(k, v)
            case "clip_sample": clipSample = try bool(k, v)
            case "clip_sample_range": clipSampleRange = try number(k, v)
            case "prediction_type":
                guard try string(k, v) == "epsilon" else { throw bad(k, "only epsilon is supported (DiT predicts the noise)") }
            case "algorithm_type":
                guard try string(k, v) == "dpmsolver++" else { throw bad(k, "only dpmsolver++ is supported") }
            case "solver_p":
                guard isNull(v) else { throw bad(k, "a nested solver is not supported") }
            case "timestep_type":
                // "continuous" changes Euler's timesteps only with v-prediction (refused above).
                guard ["discrete", "continuous"].contains(try string(k, v)) else { throw bad(k, "unknown value \(v)") }
            // Options that change nothing under the supported subset (thresholding off,
            // no flow sigmas, no dynamic shifting): accepted as diffusers writes them.
            case "dynamic_thresholding_ratio", "sample_max_value", "flow_shift", "time_shift_type", "shift_terminal":
                break
            default:
                throw bad(k, "unknown option (not a \(scheduler.rawValue) option this port knows)")
            }
        }
        try validate(source: source)
    }

    /// The combinations diffusers itself accepts (its constructors' and `set_timesteps`' checks).
    public func validate(source: String = "scheduler config") throws {
        func bad(_ why: String) -> DiffusionError { .invalidArgument("\(source): \(why)") }
        guard numTrainTimesteps > 1 else { throw bad("num_train_timesteps \(numTrainTimesteps) must be > 1") }
        if let t = trainedBetas, t.count != numTrainTimesteps {
            throw bad("trained_betas has \(t.count) values for \(numTrainTimesteps) training timesteps")
        }
        guard stepsOffset >= 0 else { throw bad("steps_offset \(stepsOffset) must be >= 0") }
        switch scheduler {
        case .dpmSolverMultistep:
            guard (1...3).contains(solverOrder) else { throw bad("solver_order \(solverOrder) must be 1, 2 or 3") }
            guard ["midpoint", "heun"].contains(solverType) else { throw bad("solver_type \(solverType) must be midpoint or heun") }
            if let v = varianceType, !["learned", "learned_range"].contains(v) { throw bad("variance_type \(v) is unknown") }
        case .uniPCMultistep:
            guard solverOrder >= 1 else { throw bad("solver_order \(solverOrder) must be >= 1") }
            guard ["bh1", "bh2"].contains(solverType) else { throw bad("solver_type \(solverType) must be bh1 or bh2") }
        case .eulerDiscrete:
            guard ["linear", "log_linear"].contains(interpolationType) else {
                throw bad("interpolation_type \(interpolationType) must be linear or log_linear")
            }
        case .heunDiscrete:
            guard !rescaleBetasZeroSNR else { throw bad("HeunDiscreteScheduler has no rescale_betas_zero_snr") }
        case .ddim:
            break  // no sigma options: diffusers' DDIMScheduler ignores them
        }
        if betaSchedule == .exp, scheduler != .heunDiscrete { throw bad("beta_schedule exp is a HeunDiscreteScheduler option") }
    }

    /// The resolved configuration as diffusers' config JSON keys (for the recipe).
    public var json: [String: Any] {
        var d: [String: Any] = [
            "_class_name": scheduler.rawValue, "num_train_timesteps": numTrainTimesteps, "beta_start": betaStart,
            "beta_end": betaEnd, "beta_schedule": betaSchedule.rawValue, "trained_betas": trainedBetas ?? NSNull(),
            "timestep_spacing": timestepSpacing.rawValue, "steps_offset": stepsOffset, "prediction_type": "epsilon",
        ]
        if scheduler != .heunDiscrete { d["rescale_betas_zero_snr"] = rescaleBetasZeroSNR }
        if scheduler != .ddim {
            d["use_karras_sigmas"] = sigmas == .karras
            d["use_exponential_sigmas"] = sigmas == .exponential
        }
        switch scheduler {
        case .dpmSolverMultistep:
            d["algorithm_type"] = "dpmsolver++"
            d["use_lu_lambdas"] = useLuLambdas
            d["euler_at_final"] = eulerAtFinal
            d["lambda_min_clipped"] = lambdaMinClipped.isFinite ? lambdaMinClipped : "-Infinity"
            d["variance_type"] = varianceType ?? NSNull()
        case .uniPCMultistep:
            d["predict_x0"] = predictX0
            d["disable_corrector"] = disableCorrector
        case .eulerDiscrete:
            d["interpolation_type"] = interpolationType
        case .heunDiscrete, .ddim:
            d["clip_sample"] = clipSample
            d["clip_sample_range"] = clipSampleRange
        }
        if scheduler == .ddim { d["set_alpha_to_one"] = setAlphaToOne }
        if [.dpmSolverMultistep, .uniPCMultistep].contains(scheduler) {
            d["solver_order"] = solverOrder
            d["solver_type"] = solverType
            d["lower_order_final"] = lowerOrderFinal
        }
        if [.dpmSolverMultistep, .uniPCMultistep, .eulerDiscrete].contains(scheduler) {
            d["final_sigmas_type"] = finalSigmas.rawValue
        }
        if [.uniPCMultistep, .eulerDiscrete].contains(scheduler) {
            d["sigma_min"] = sigmaMin ?? NSNull()
            d["sigma_max"] = sigmaMax ?? NSNull()
        }
        return d
    }
}
