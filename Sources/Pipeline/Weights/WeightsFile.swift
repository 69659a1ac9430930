import Foundation

/// Opens any weights file this project reads, by content: safetensors now;
/// PyTorch zip checkpoints (.pt/.pth/.bin) are added by the checkpoint reader.
public enum WeightsFile {
    public static func open(_ path: String) throws -> TensorSource {
        guard FileManager.default.fileExists(atPath: path) else {
            throw WeightError.unreadable(file: path, reason: "no such file")
        }
        return try SafeTensorsFile(path: path)
    }
}
