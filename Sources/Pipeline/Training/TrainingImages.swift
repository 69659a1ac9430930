import Foundation
import PipelineTensor
import PipelineImaging

/// A pixel-space training set held in memory: each image as a (3, S, S) tensor in [−1, 1]
/// (`ImageRGB8.tensorCHW()`) and its class label.
public struct TrainingImages: TrainingData {
    public let size: Int
    public let numClasses: Int
    public let labels: [Int]
    let pixels: Tensor  // (count, 3, S, S)
    public var count: Int { labels.count }
    public var sampleShape: [Int] { [3, size, size] }

    /// Every image of an ImageFolder root (`root/<class>/<image>`); each must be S × S.
    public init(imageFolder root: String, size: Int) throws {
        let folder = try ImageFolder(root: root)
        guard !folder.items.isEmpty else { throw ImageError.invalid(file: root, reason: "no images") }
        let per = 3 * size * size
        let all = Tensor(uninitialized: [folder.items.count, 3, size, size])
        for (i, item) in folder.items.enumerated() {
            let img = try ImageDecoder.decode(path: item.path)
            guard img.width == size, img.height == size else {
                throw ImageError.invalid(file: item.path, reason: "is \(img.width)x\(img.height), the model trains on \(size)x\(size)")
            }
            let t = img.tensorCHW()
            // Keep `t` alive across the copy: `data` points into its storage, which ARC may
            // free right after the last use of `t` (the `.data` read) otherwise.
            withExtendedLifetime(t) { (all.data + i * per).update(from: t.data, count: per) }
        }
        self.size = size
        numClasses = folder.classes.count
        labels = folder.items.map(\.label)
        pixels = all
    }

    /// `count` images of the procedural shapes set, generated in memory.
    public init(shapes: ShapesDataset, count: Int) {
        let s = shapes.size, per = 3 * s * s
        let all = Tensor(uninitialized: [count, 3, s, s])
        for i in 0..<count {
            let t = shapes.image(i).tensorCHW()
            withExtendedLifetime(t) { (all.data + i * per).update(from: t.data, count: per) }
        }
        size = s
        numClasses = ShapesDataset.numClasses
        labels = (0..<count).map(shapes.label(of:))
        pixels = all
    }

    /// The images at `indices` as one (N, 3, S, S) batch.
    public func batch(_ indices: [Int]) -> Tensor {
        let per = 3 * size * size
        let out = Tensor(uninitialized: [indices.count, 3, size, size])
        for (k, i) in indices.enumerated() { (out.data + k * per).update(from: pixels.data + i * per, count: per) }
        return out
    }

    /// Pixels do not depend on the epoch.
    public func batch(_ indices: [Int], epochs: [Int]) throws -> Tensor { batch(indices) }
}
