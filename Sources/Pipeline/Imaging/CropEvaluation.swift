import Foundation
import PipelineFiles

/// `dit-worker eval crop`: decode images and apply ADM's `center_crop_arr`,
/// storing both for comparison with Pillow.
public enum CropEvaluation {
    /// For each image file: `<file name>.rgb` (the decoded RGB image, uint8
    /// [H, W, 3]) and `<file name>.crop` (`center_crop_arr` at `size`, uint8 [S, S, 3]).
    public static func run(images: [String], size: Int, limits: ImageDecodeLimits = .standard) throws -> SafeTensorsWriter {
        guard size > 0 else { throw ImageError.invalid(file: "<arguments>", reason: "--size must be positive, got \(size)") }
        guard !images.isEmpty else { throw ImageError.invalid(file: "<arguments>", reason: "no images given") }
        var writer = SafeTensorsWriter(metadata: ["size": String(size), "crop": "center_crop_arr (ADM, Pillow arithmetic)"])
        var seen: [String: String] = [:]
        for path in images {
            let name = URL(fileURLWithPath: path).lastPathComponent
            if let other = seen[name] {
                throw ImageError.invalid(file: path, reason: "same file name as \(other): output keys '\(name).rgb' would collide")
            }
            seen[name] = path
            let image = try ImageDecoder.decode(path: path, limits: limits)
            let crop = try ADMPreprocess.centerCropArr(image, size: size)
            writer.add("\(name).rgb", uint8: image.pixels, shape: image.shape)
            writer.add("\(name).crop", uint8: crop.pixels, shape: crop.shape)
        }
        return writer
    }

    /// Runs and writes `output` atomically.
    public static func write(images: [String], size: Int, output: String) throws {
        try run(images: images, size: size).write(to: output)
    }
}
