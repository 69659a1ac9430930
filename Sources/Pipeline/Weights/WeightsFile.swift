import Foundation
import PipelineFiles

/// Opens any weights file this project reads, by content (never by extension):
/// safetensors, or a PyTorch checkpoint (`torch.save`, .pt/.pth/.bin; zip or legacy format).
public enum WeightsFile {
    public enum Format: Equatable {
        case safetensors, torchZip, torchLegacy
    }

    /// `pick` chooses between a train.py checkpoint's `ema` (default) and `model`
    /// weights; it has no effect on other files.
    public static func open(_ path: String, pick: CheckpointPick = .ema) throws -> TensorSource {
        switch try format(of: path) {
        case .safetensors: return try SafeTensorsFile(path: path)
        case .torchZip, .torchLegacy: return try TorchCheckpoint(path: path, pick: pick)
        }
    }

    /// Sniffs the first bytes: zip local-header magic, or a safetensors header
    /// (8-byte length, then a JSON object).
    public static func format(of path: String) throws -> Format {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw WeightError.unreadable(file: path, reason: "no such file")
        }
        guard !isDir.boolValue else { throw WeightError.unreadable(file: path, reason: "is a directory, not a weights file") }
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw WeightError.unreadable(file: path, reason: String(cString: strerror(errno)))
        }
        defer { try? h.close() }
        let head = [UInt8]((try? h.read(upToCount: 16)) ?? Data())
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .torchZip }
        if head.count > 8, head[8] == UInt8(ascii: "{") { return .safetensors }
        // The format torch.save wrote before PyTorch 1.6: a pickle stream that
        // starts with protocol 2 and the magic number 0x1950a86a20f9469cfc6c.
        if head.starts(with: TorchLegacyFormat.magic.prefix(14)) { return .torchLegacy }
        throw WeightError.malformed(file: path, reason: "neither a safetensors file nor a PyTorch zip checkpoint (\(head.count < 16 ? "only \(head.count) bytes" : "unknown leading bytes"))")
    }
}
