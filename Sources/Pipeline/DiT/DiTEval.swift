import Foundation
import PipelineFiles
import PipelineWeights

/// `dit-worker eval dit`: runs a DiT on a safetensors file of inputs.
///
/// Inputs: `x` (N, C, H, W), `t` (N), `y` (N) → `out` = forward(x, t, y). When the file also
/// holds `cfg_x`, `cfg_t`, `cfg_y`, `cfg_scale`, writes `cfg_out` = forward_with_cfg(...).
/// `t` and `y` may be int64 or float (y must then hold whole numbers). The output's metadata
/// records how many channels guidance touched (the reference's 3, or all eps channels).
public enum DiTEval {
    public static let cfgKeys = ["cfg_x", "cfg_t", "cfg_y", "cfg_scale"]

    /// Runs the model; returns the names of the tensors written to `output`.
    @discardableResult
    public static func run(weights: String, configFile: String? = nil, numHeads: Int? = nil,
                           pick: CheckpointPick = .ema, inputs: String, output: String,
                           guideAllChannels: Bool = false) throws -> [String] {
        let model = try DiT.load(path: weights, configFile: configFile, numHeads: numHeads, pick: pick)
        let source = try SafeTensorsFile(path: inputs)
        return try run(model: model, inputs: source, output: output, guideAllChannels: guideAllChannels)
    }

    @discardableResult
    public static func run(model: DiT, inputs source: SafeTensorsFile, output: String,
                           guideAllChannels: Bool = false) throws -> [String] {
        var writer = SafeTensorsWriter(metadata: [
            "model": model.config.preset?.rawValue ?? "DiT (custom)",
            "key_layout": model.config.layout.rawValue,
        ])
        let out = try model.forward(try source.tensor("x"), t: try timesteps(source, "t"), y: try labels(source, "y"))
        writer.add("out", out)
        let present = cfgKeys.filter { source.contains($0) }
        if !present.isEmpty {
            guard present.count == cfgKeys.count else {
                let missing = cfgKeys.filter { !source.contains($0) }
                throw WeightError.malformed(file: source.path, reason: "holds \(present.joined(separator: ", ")) but not \(missing.joined(separator: ", ")) (all four cfg_ tensors are needed for forward_with_cfg)")
            }
            let scale = try source.doubles("cfg_scale")
            guard scale.count == 1 else {
                throw WeightError.malformed(file: source.path, reason: "'cfg_scale' holds \(scale.count) values, expected 1")
            }
            let cfg = try model.forwardWithCFG(try source.tensor("cfg_x"), t: try timesteps(source, "cfg_t"),
                                               y: try labels(source, "cfg_y"), scale: Float(scale[0]),
                                               guideAllChannels: guideAllChannels)
            writer.add("cfg_out", cfg)
            writer.metadata["cfg_guided_channels"] = guideAllChannels
                ? "all \(model.config.inChannels) eps channels (standard form)"
                : "first 3 (reference forward_with_cfg)"
        }
        try writer.write(to: output)
        return writer.names
    }

    static func timesteps(_ source: SafeTensorsFile, _ key: String) throws -> [Float] {
        try vector(source, key)
        return try source.doubles(key).map { Float($0) }
    }

    package static func labels(_ source: SafeTensorsFile, _ key: String) throws -> [Int] {
        let info = try vector(source, key)
        if !info.dtype.isFloat { return try source.int64s(key).map { Int($0) } }
        return try source.doubles(key).enumerated().map { i, v in
            guard v == v.rounded(), abs(v) < 1e9 else {
                throw WeightError.malformed(file: source.path, reason: "'\(key)'[\(i)] = \(v) is not a class label")
            }
            return Int(v)
        }
    }

    @discardableResult
    private static func vector(_ source: SafeTensorsFile, _ key: String) throws -> TensorInfo {
        guard let info = source.info(key) else { throw WeightError.missingKey(file: source.path, key: key) }
        guard info.shape.count == 1 else {
            throw WeightError.malformed(file: source.path, reason: "'\(key)' has shape \(info.shape), expected (N)")
        }
        return info
    }
}
