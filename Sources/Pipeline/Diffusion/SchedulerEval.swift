import Foundation
import PipelineTensor
import PipelineFiles

/// `dit-worker eval sampler`: the diffusers schedulers driven as `DiTPipeline` drives them,
/// on the fixture format of `../shared/fixtures/samplers`: `z_T`, `y`, `cfg_scale` and, in the
/// metadata, `samplers` (preset names), `steps` and each `<name>_config` (diffusers' resolved
/// config JSON, applied over the preset) → `<name>_<steps>` (final latents) and
/// `<name>_<steps>_timesteps` (float64, the t of every model call).
public enum SchedulerEval {
    public static func run(model: NoisePredictionModel, inputs: SafeTensorsFile, samplers: [String]? = nil,
                           steps: [Int]? = nil) throws -> SafeTensorsWriter {
        let meta = inputs.metadata
        func list(_ key: String) throws -> [String] {
            guard let v = meta[key] else { throw DiffusionError.invalidArgument("\(inputs.path): no metadata \(key)") }
            return v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let names = try samplers ?? list("samplers")
        let counts = try steps ?? list("steps").map { s -> Int in
            guard let k = Int(s), k > 0 else { throw DiffusionError.invalidArgument("\(inputs.path): step count \"\(s)\" is not a positive integer") }
            return k
        }
        let zT = try inputs.tensor("z_T")
        let n = zT.shape.first ?? 0
        let shape = [n, model.inChannels, model.inputSize, model.inputSize]
        guard zT.shape == shape, n > 0 else { throw DiffusionError.shapeMismatch(what: "\(inputs.path): z_T", expected: shape, found: zT.shape) }
        let labels = try DiffusionEval.ints(inputs, "y", count: n)
        let scale = try inputs.tensor("cfg_scale").values
        guard scale.count == 1 else { throw DiffusionError.invalidArgument("\(inputs.path): cfg_scale must hold one value, has \(scale.count)") }
        var out = SafeTensorsWriter(metadata: ["samplers": names.joined(separator: ","), "steps": counts.map(String.init).joined(separator: ",")])
        let noise = RecordedNoise(initial: zT)
        for name in names {
            guard let preset = SchedulerPreset(rawValue: name) else {
                throw DiffusionError.invalidArgument("\(inputs.path): unknown sampler \"\(name)\" (expected one of \(SchedulerPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var config = preset.config
            if let text = meta["\(name)_config"] { try config.apply(jsonData: Data(text.utf8), source: "\(inputs.path): \(name)_config") }
            out.metadata["\(name)_config"] = config.jsonText
            for k in counts {
                let scheduler = try config.scheduler(steps: k)
                let sampler = try SchedulerSampler(scheduler: scheduler, settings: SamplerSettings(scheduler: config, cfgScale: scale[0]))
                out.add("\(name)_\(k)", try sampler.sample(model: model, indices: Array(0..<n), labels: labels, noise: noise))
                out.add("\(name)_\(k)_timesteps", float64: scheduler.callTimesteps)
            }
        }
        return out
    }
}
