import Foundation
import PipelineTensor
import PipelineFiles

/// `dit-worker eval diffusion`: runs the reference's diffusion entry points on a
/// model and a safetensors file of inputs, as `../shared/fixtures/diffusion`
/// records them.
///
/// - `x0, t, noise, y` → `x_t` (`q_sample`), `loss, mse` (+ `vb` for a learned
///   variance): `training_losses` on the full chain (DiT's train.py uses
///   `create_diffusion("")`).
/// - `z_T, labels, cfg_scale, step_noise` → `ddpm_cfg` (`p_sample_loop` with
///   `forward_with_cfg`, respacing `respacing`), `ddpm_nocfg` (same chain,
///   `forward`), `ddim_cfg` (`ddim_sample_loop`, `ddim_respacing`, eta 0); all
///   with `clip_denoised=False`, the recorded noise fed through `RecordedNoise`.
///   Also writes `respaced_*`/`ddim_*` `timestep_map` (int64) and `betas` (float64).
public enum DiffusionEval {
    public struct Options {
        public var respacing: String?
        public var ddimRespacing: String?
        public init(respacing: String? = nil, ddimRespacing: String? = nil) {
            self.respacing = respacing
            self.ddimRespacing = ddimRespacing
        }
    }

    public static func run(model: NoisePredictionModel, inputs: SafeTensorsFile, options: Options = Options()) throws -> SafeTensorsWriter {
        let meta = inputs.metadata
        let schedule = try NoiseSchedule(parsing: meta["noise_schedule"] ?? "linear")
        let stepsText = meta["diffusion_steps"] ?? "1000"
        guard let steps = Int(stepsText), steps > 0 else {
            throw DiffusionError.invalidArgument("\(inputs.path): metadata diffusion_steps \"\(stepsText)\" is not a positive integer")
        }
        var out = SafeTensorsWriter(metadata: [
            "noise_schedule": schedule.rawValue, "diffusion_steps": String(steps), "learn_sigma": model.learnsSigma ? "True" : "False",
        ])
        var did = false

        if inputs.contains("x0") {
            did = true
            let x0 = try inputs.tensor("x0")
            let batch = x0.shape.first ?? 0
            let shape = [batch, model.inChannels, model.inputSize, model.inputSize]
            guard x0.shape == shape else { throw DiffusionError.shapeMismatch(what: "\(inputs.path): x0", expected: shape, found: x0.shape) }
            let noise = try inputs.tensor("noise", shape: shape)
            let t = try ints(inputs, "t", count: batch)
            let y = try ints(inputs, "y", count: batch)
            for (i, v) in y.enumerated() where v < 0 || v > model.numClasses {
                throw DiffusionError.labelOutOfRange(label: v, index: i, numClasses: model.numClasses + 1)
            }
            let full = try GaussianDiffusion.create(respacing: nil, schedule: schedule, predictXstart: model.predictsXstart,
                                                    learnSigma: model.learnsSigma,
                                                    diffusionSteps: steps)
            let terms = try full.trainingLosses(xStart: x0, t: t, noise: noise) { x, tm in try model.forward(x, t: tm, y: y) }
            out.add("x_t", terms.xT)
            out.add("loss", Tensor(shape: [batch], values: terms.loss))
            if let m = terms.mse { out.add("mse", Tensor(shape: [batch], values: m)) }
            if let v = terms.vb { out.add("vb", Tensor(shape: [batch], values: v)) }
        }

        if inputs.contains("z_T") {
            did = true
            let zT = try inputs.tensor("z_T")
            let n = zT.shape.first ?? 0
            let shape = [n, model.inChannels, model.inputSize, model.inputSize]
            guard zT.shape == shape, n > 0 else { throw DiffusionError.shapeMismatch(what: "\(inputs.path): z_T", expected: shape, found: zT.shape) }
            let labels = try ints(inputs, "labels", count: n)
            let scaleValues = try inputs.tensor("cfg_scale").values
            guard scaleValues.count == 1 else {
                throw DiffusionError.invalidArgument("\(inputs.path): cfg_scale must hold one value, has \(scaleValues.count)")
            }
            let stepNoise = try inputs.tensor("step_noise")
            let recorded = RecordedNoise(initial: zT, steps: stepNoise, labels: labels)
            guard let ddpmText = options.respacing ?? meta["respacing"] else {
                throw DiffusionError.invalidArgument("\(inputs.path): no respacing in the metadata; pass --respacing")
            }
            guard let ddimText = options.ddimRespacing ?? meta["ddim_respacing"] else {
                throw DiffusionError.invalidArgument("\(inputs.path): no ddim_respacing in the metadata; pass --ddim-respacing")
            }
            let ddpm = try GaussianDiffusion.create(respacing: try Respacing(parsing: ddpmText), schedule: schedule,
                                                    predictXstart: model.predictsXstart, learnSigma: model.learnsSigma, diffusionSteps: steps)
            let ddim = try GaussianDiffusion.create(respacing: try Respacing(parsing: ddimText), schedule: schedule,
                                                    predictXstart: model.predictsXstart, learnSigma: model.learnsSigma, diffusionSteps: steps)
            let indices = Array(0..<n)
            func run(_ d: GaussianDiffusion, _ kind: SamplerKind, _ scale: Float) throws -> Tensor {
                try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: kind, cfgScale: scale))
                    .sample(model: model, indices: indices, labels: labels, noise: recorded)
            }
            out.add("ddpm_cfg", try run(ddpm, .ddpm, scaleValues[0]))
            out.add("ddpm_nocfg", try run(ddpm, .ddpm, 1))
            out.add("ddim_cfg", try run(ddim, .ddim, scaleValues[0]))
            for (key, d) in [("respaced", ddpm), ("ddim", ddim)] {
                out.add("\(key)_timestep_map", int64: d.timestepMap.map(Int64.init))
                out.add("\(key)_betas", float64: d.betas)
            }
            out.metadata["respacing"] = ddpmText
            out.metadata["ddim_respacing"] = ddimText
        }
        guard did else {
            throw DiffusionError.invalidArgument("\(inputs.path): holds neither x0 (training losses) nor z_T (samplers)")
        }
        return out
    }

    static func ints(_ f: SafeTensorsFile, _ key: String, count: Int) throws -> [Int] {
        let v = try f.int64s(key)
        guard v.count == count else {
            throw DiffusionError.shapeMismatch(what: "\(f.path): \(key)", expected: [count], found: [v.count])
        }
        return v.map { Int($0) }
    }
}
