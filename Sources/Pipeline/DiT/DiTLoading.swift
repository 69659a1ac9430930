import Foundation
import PipelineFiles
import PipelineWeights

extension DiT {
    /// Weight file names a diffusers model folder may hold, in order of preference.
    static let diffusersWeightNames = ["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"]

    /// Loads a DiT from `path`: a .safetensors file, a PyTorch .pt/.pth checkpoint (through
    /// `WeightsFile.open`), or a diffusers folder (`config.json` + `diffusion_pytorch_model.safetensors`).
    /// The configuration comes from `configFile`, else a `config.json` beside the weights (or in
    /// the folder), else is inferred from the tensor shapes. `numHeads` overrides the head count
    /// (needed when inferring a width that matches no preset). `pick` chooses a `train.py`
    /// checkpoint's `ema` (default) or `model` weights.
    public static func load(path: String, configFile: String? = nil, numHeads: Int? = nil,
                            pick: CheckpointPick = .ema) throws -> DiT {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WeightError.unreadable(file: path, reason: "no such file or folder")
        }
        let weightsPath: String
        let folder: String
        if isDir.boolValue {
            folder = path
            guard let found = diffusersWeightNames.map({ (path as NSString).appendingPathComponent($0) })
                .first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw WeightError.unreadable(file: path, reason: "folder holds none of \(diffusersWeightNames.joined(separator: ", "))")
            }
            weightsPath = found
        } else {
            folder = (path as NSString).deletingLastPathComponent
            weightsPath = path
        }
        let weights = try WeightsFile.open(weightsPath, pick: pick)
        let besideConfig = (folder.isEmpty ? "config.json" : (folder as NSString).appendingPathComponent("config.json"))
        let configPath = configFile ?? (FileManager.default.fileExists(atPath: besideConfig) ? besideConfig : nil)
        var config: DiTConfig
        if let configPath {
            config = try DiTConfig.load(configFile: configPath)
            if let numHeads {
                config.numHeads = numHeads
                try config.validate(file: configPath)
            }
        } else {
            config = try DiTConfig.infer(from: weights, numHeads: numHeads)
        }
        return try DiT(config: config, weights: weights)
    }
}
