import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT
import PipelineDiffusion

/// What the trainer draws batches from: `count` items, each a (C, H, W) tensor with a label.
/// `batch` may depend on the epoch an item is drawn in (latents re-drawn from their posterior).
public protocol TrainingData {
    var count: Int { get }
    var numClasses: Int { get }
    var labels: [Int] { get }
    /// (C, H, W) of one item.
    var sampleShape: [Int] { get }
    /// The items at `indices`, drawn in `epochs` (one per item), as one (N, C, H, W) batch.
    func batch(_ indices: [Int], epochs: [Int]) throws -> Tensor
}

/// A latent training set from encode-job shards (`EncodeKind`'s output folder): per image the
/// posterior mean and std (unscaled) and the label. Every epoch each latent is re-drawn as
///
///     scale · (mean + std · eps − shift)        (shift only for VAEs that have one)
///
/// with eps from the noise protocol keyed by (seed, the image's index in the encode job,
/// purpose `trainingLatent`, step = epoch), and scale/shift the VAE's `scaling_factor` and
/// `shift_factor` as the encode job recorded them in each shard's metadata. This is fast-DiT's
/// idea of training on pre-extracted features without freezing one posterior sample: the
/// encode job's own `latent` (epoch-independent, purpose `vaePosterior`) is not used.
public final class TrainingLatents: TrainingData {
    public let numClasses: Int
    public let labels: [Int]
    /// The encode job's image index of each item (the noise key).
    public let imageIndices: [Int]
    public let sampleShape: [Int]
    public let scalingFactor: Float
    public let shiftFactor: Float?
    public let seed: UInt64
    let mean: Tensor, std: Tensor  // (count, C, H, W)
    let noise: PhiloxNoise
    public var count: Int { labels.count }

    /// Reads `root/manifest.json` and the shards it lists (their SHA-256 is not re-checked here;
    /// shapes, counts and labels are).
    public init(shards root: String, seed: UInt64) throws {
        let manifestPath = root + "/manifest.json"
        struct Manifest: Decodable {
            var images: Int; var classes: Int; var shards: [FileDigest]
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        } catch {
            throw DiTError.badInput("\(manifestPath): not an encode-job manifest (\(error))")
        }
        guard manifest.classes > 0, !manifest.shards.isEmpty else {
            throw DiTError.badInput("\(manifestPath): no classes or no shards")
        }
        var means: [Tensor] = [], stds: [Tensor] = [], labels: [Int] = [], indices: [Int] = []
        var shape: [Int]?, factors: (Float, Float?)?
        for digest in manifest.shards {
            let path = root + "/" + digest.path
            let f = try SafeTensorsFile(path: path)
            let label = try f.int64s("label").map(Int.init), index = try f.int64s("index").map(Int.init)
            guard label.count == index.count else { throw WeightError.malformed(file: path, reason: "label and index differ in length") }
            if label.isEmpty { continue }
            let m = try f.tensor("mean"), s = try f.tensor("std")
            guard m.rank == 4, m.shape[0] == label.count, s.shape == m.shape else {
                throw WeightError.malformed(file: path, reason: "mean \(m.shape) / std \(s.shape) do not match \(label.count) labels")
            }
            let item = Array(m.shape.dropFirst())
            if let shape, shape != item { throw WeightError.malformed(file: path, reason: "latents \(item), earlier shards \(shape)") }
            shape = item
            guard let sf = f.metadata["scaling_factor"].flatMap(Float.init), sf.isFinite, sf > 0 else {
                throw WeightError.malformed(file: path, reason: "metadata 'scaling_factor' is missing: re-run the encode job")
            }
            let sh: Float?
            if let text = f.metadata["shift_factor"] {  // absent: the VAE has none
                guard let v = Float(text), v.isFinite else { throw WeightError.malformed(file: path, reason: "metadata 'shift_factor' is '\(text)'") }
                sh = v
            } else { sh = nil }
            if let factors, factors.0 != sf || factors.1 != sh {
                throw WeightError.malformed(file: path, reason: "scaling/shift factors differ from earlier shards")
            }
            factors = (sf, sh)
            if let bad = label.first(where: { $0 < 0 || $0 >= manifest.classes }) {
                throw WeightError.malformed(file: path, reason: "label \(bad) is outside 0..<\(manifest.classes)")
            }
            means.append(m); stds.append(s); labels += label; indices += index
        }
        guard let shape, let factors, !labels.isEmpty else { throw DiTError.badInput("\(root): the shards hold no images") }
        mean = Tensor.concat(means)
        std = Tensor.concat(stds)
        self.labels = labels
        imageIndices = indices
        sampleShape = shape
        numClasses = manifest.classes
        (scalingFactor, shiftFactor) = factors
        self.seed = seed
        noise = PhiloxNoise(seed: seed)
    }

    /// Whether `path` is an encode-job output folder (has a manifest.json and shards/).
    public static func isShardFolder(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path + "/manifest.json")
    }

    public func batch(_ indices: [Int], epochs: [Int]) throws -> Tensor {
        precondition(indices.count == epochs.count, "one epoch per item")
        let per = Tensor.count(of: sampleShape)
        let out = Tensor(uninitialized: [indices.count] + sampleShape)
        let scale = scalingFactor, shift = shiftFactor ?? 0
        for (k, i) in indices.enumerated() {
            let o = out.data + k * per
            try noise.fillNormal(o, count: per, index: imageIndices[i], purpose: .trainingLatent, step: epochs[k])
            let m = mean.data + i * per, s = std.data + i * per
            for j in 0..<per { o[j] = (m[j] + s[j] * o[j] - shift) * scale }
        }
        return out
    }
}
