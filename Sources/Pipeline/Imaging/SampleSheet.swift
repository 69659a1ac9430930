import Foundation
import PipelineTensor

/// A sample sheet from the PNGs a sample job writes (`NNNNNN.png`): the first `count` images
/// of a folder, in name order, laid out by `SampleGrid.make` (torchvision `make_grid` + `save_image`,
/// values mapped back to [−1, 1] first, so the PNG bytes survive exactly), then enlarged `scale`
/// times by pixel repetition so that 32 px samples are visible.
public enum SampleSheet {
    public static func make(folder: String, count: Int, nrow: Int, padding: Int = 2, scale: Int = 1) throws -> ImageRGB8 {
        guard count > 0, nrow > 0, scale >= 1, scale <= 16 else {
            throw ImageError.invalid(file: folder, reason: "a sample sheet needs count > 0, nrow > 0 and scale in 1...16")
        }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
                .filter { $0.hasSuffix(".png") && Int($0.dropLast(4)) != nil }.sorted()
        } catch {
            throw ImageError.invalid(file: folder, reason: "cannot list the folder: \(error.localizedDescription)")
        }
        guard names.count >= count else {
            throw ImageError.invalid(file: folder, reason: "has \(names.count) numbered PNGs, the sheet needs \(count)")
        }
        return try make(paths: names.prefix(count).map { folder + "/" + $0 }, nrow: nrow, padding: padding, scale: scale)
    }

    /// A sample sheet of the given image files, in the order given (all of one size).
    public static func make(paths: [String], nrow: Int, padding: Int = 2, scale: Int = 1) throws -> ImageRGB8 {
        guard !paths.isEmpty, nrow > 0, scale >= 1, scale <= 16 else {
            throw ImageError.invalid(file: paths.first ?? "<none>", reason: "a sample sheet needs images, nrow > 0 and scale in 1...16")
        }
        var batch: Tensor?
        for (k, path) in paths.enumerated() {
            let img = try ImageDecoder.decode(path: path)
            if batch == nil { batch = Tensor(uninitialized: [paths.count, 3, img.height, img.width]) }
            guard let b = batch, b.shape[2] == img.height, b.shape[3] == img.width else {
                throw ImageError.invalid(file: path, reason: "is \(img.width)x\(img.height), the first sample is \(batch?.shape[3] ?? 0)x\(batch?.shape[2] ?? 0)")
            }
            let per = 3 * img.height * img.width
            let t = img.tensorCHW()
            withExtendedLifetime(t) { (b.data + k * per).update(from: t.data, count: per) }
        }
        guard let samples = batch else { throw ImageError.invalid(file: paths[0], reason: "no samples") }
        return enlarged(try SampleGrid.make(samples, nrow: nrow, padding: padding), by: scale)
    }

    /// Nearest-neighbour enlargement by an integer factor.
    public static func enlarged(_ image: ImageRGB8, by k: Int) -> ImageRGB8 {
        guard k > 1 else { return image }
        var out = ImageRGB8(width: image.width * k, height: image.height * k)
        let w = image.width, ow = out.width
        image.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<out.height {
                    let sy = y / k
                    for x in 0..<ow {
                        let s = (sy * w + x / k) * 3, d = (y * ow + x) * 3
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return out
    }
}
