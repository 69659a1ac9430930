import Foundation

/// Classifier-free guidance applied only in a limited interval of the chain (Kynkäänniemi
/// et al. 2024, "Applying guidance in a limited interval improves sample and distribution
/// quality in diffusion models"): at a model call whose timestep t (the value fed to the
/// model, 0 ... num_train_timesteps - 1; noisier = larger) satisfies `low <= t <= high` the
/// model is called for the conditional and the null label and the two are mixed; elsewhere
/// one conditional call is made, so the interval also saves model calls.
public struct GuidanceInterval: Equatable, Codable, CustomStringConvertible {
    public var low: Double
    public var high: Double

    public init(low: Double, high: Double) throws {
        guard low.isFinite, high.isFinite, low <= high else {
            throw DiffusionError.invalidArgument("guidance interval \(low),\(high): expected LO,HI with LO <= HI (model timesteps)")
        }
        self.low = low
        self.high = high
    }

    /// "LO,HI" (e.g. "0,700").
    public init(parsing s: String) throws {
        let parts = s.split(separator: ",", omittingEmptySubsequences: false)
            .map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1] else {
            throw DiffusionError.invalidArgument("--cfg-interval \"\(s)\": expected LO,HI (model timesteps, e.g. 0,700)")
        }
        try self.init(low: lo, high: hi)
    }

    public func contains(_ t: Double) -> Bool { t >= low && t <= high }

    public var description: String { "\(Self.text(low)),\(Self.text(high))" }

    private static func text(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
}

/// Whether a model call at timestep `t` is guided: a scale above 1 and, with an interval, t in it.
extension SamplerSettings {
    public func guides(at t: Double) -> Bool {
        cfgScale != 1 && (cfgInterval?.contains(t) ?? true)
    }
}
