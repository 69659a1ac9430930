import Foundation
import PipelineTensor

/// `--sampler NAME [--scheduler-config FILE]` resolved: ADM's `ddpm` / `ddim`, or a diffusers
/// scheduler preset (`SchedulerPreset`) with its configuration.
public enum SamplerChoice: Equatable {
    case adm(SamplerKind)
    case diffusers(SchedulerPreset, SchedulerConfig)

    public static var names: [String] { SamplerKind.allCases.map(\.rawValue) + SchedulerPreset.allCases.map(\.rawValue) }

    public init(name: String, schedulerConfigFile: String? = nil) throws {
        if let kind = SamplerKind(rawValue: name) {
            guard schedulerConfigFile == nil else {
                throw DiffusionError.invalidArgument("--scheduler-config is for the diffusers samplers, not \(name)")
            }
            self = .adm(kind)
        } else if let preset = SchedulerPreset(rawValue: name) {
            self = .diffusers(preset, try preset.config(overridesFile: schedulerConfigFile))
        } else {
            throw DiffusionError.invalidArgument("unknown sampler \"\(name)\" (expected one of \(Self.names.joined(separator: ", ")))")
        }
    }

    /// Settings for this sampler with the run's guidance and batching.
    public func settings(cfgScale: Float, eta: Float = 0, guideAllChannels: Bool = false,
                         batching: ModelBatching = .deterministic, cfgInterval: GuidanceInterval? = nil) -> SamplerSettings {
        switch self {
        case let .adm(kind):
            return SamplerSettings(kind: kind, cfgScale: cfgScale, eta: eta, guideAllChannels: guideAllChannels,
                                   batching: batching, cfgInterval: cfgInterval)
        case let .diffusers(_, config):
            return SamplerSettings(scheduler: config, cfgScale: cfgScale, batching: batching, cfgInterval: cfgInterval)
        }
    }
}

extension SamplerSettings {
    /// A diffusers scheduler's settings: guidance on every latent channel, as `DiTPipeline`.
    public init(scheduler: SchedulerConfig, cfgScale: Float = 1, batching: ModelBatching = .deterministic,
                cfgInterval: GuidanceInterval? = nil) {
        self.init(kind: .ddim, cfgScale: cfgScale, guideAllChannels: true, batching: batching,
                  cfgInterval: cfgInterval, scheduler: scheduler)
    }
}

extension SchedulerConfig {
    /// The resolved config as JSON text (sorted keys), as the recipe and eval outputs record it.
    public var jsonText: String {
        guard let d = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: d, as: UTF8.self)
    }
}
