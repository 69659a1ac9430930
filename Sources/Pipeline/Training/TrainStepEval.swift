import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT

/// `dit-worker eval train`: one training step as the `train/tiny` fixture describes it.
///
/// Reads `x0`, `t`, `noise`, `y` from the inputs (and `lr`, `weight_decay`, `betas`, `eps` from
/// their metadata; PyTorch's AdamW defaults where absent), computes the batch-mean ADM loss
/// (labels used as given: no dropout), its gradients and one AdamW step, and writes `loss`,
/// `grad.<param>` for every trainable parameter and `after.<param>` for every state-dict tensor.
public enum TrainStepEval {
    @discardableResult
    public static func run(weights: String, configFile: String? = nil, inputs: String, output: String) throws -> [String] {
        let model = try TrainableDiT(DiT.load(path: weights, configFile: configFile))
        let source = try SafeTensorsFile(path: inputs)
        let meta = source.metadata
        func number(_ key: String, _ fallback: Double) throws -> Double {
            guard let s = meta[key] else { return fallback }
            guard let v = Double(s.trimmingCharacters(in: .whitespaces)) else {
                throw WeightError.malformed(file: inputs, reason: "metadata '\(key)' = '\(s)' is not a number")
            }
            return v
        }
        var betas = (0.9, 0.999)
        if let s = meta["betas"] {
            let parts = s.trimmingCharacters(in: CharacterSet(charactersIn: "()[] ")).split(separator: ",")
                .compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2 else { throw WeightError.malformed(file: inputs, reason: "metadata 'betas' = '\(s)' is not two numbers") }
            betas = (parts[0], parts[1])
        }
        let opt = AdamW(model: model, lr: Float(try number("lr", 1e-3)), weightDecay: Float(try number("weight_decay", 1e-2)),
                        beta1: Float(betas.0), beta2: Float(betas.1), eps: Float(try number("eps", 1e-8)))
        let x0 = try source.tensor("x0"), noise = try source.tensor("noise")
        let t = try DiTEval.labels(source, "t"), y = try DiTEval.labels(source, "y")
        let result = try model.lossAndGradients(x0: x0, t: t, noise: noise, y: y, diffusion: .linear(steps: 1000))
        var writer = SafeTensorsWriter(metadata: ["lr": String(opt.lr), "weight_decay": String(opt.weightDecay)])
        writer.add("loss", Tensor(shape: [1], values: [result.loss]))
        writer.add("mse", Tensor(shape: [result.mse.count], values: result.mse))
        writer.add("vb", Tensor(shape: [result.vb.count], values: result.vb))
        for p in model.parameters { if let g = p.grad { writer.add("grad." + p.name, g.copy()) } }
        try opt.update(model)
        model.stateDict(into: &writer, prefix: "after.")
        try writer.write(to: output)
        return writer.names
    }
}
