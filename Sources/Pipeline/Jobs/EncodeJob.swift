import Foundation
import PipelineTensor
import PipelineFiles
import PipelineImaging
import PipelineVAE
import PipelineDiffusion

/// The `encode` kind: an ImageFolder tree to VAE latent shards. Per image: the posterior
/// mean and std (unscaled), the scaled latent `scale · (mean + std · eps)` with eps from the
/// noise protocol keyed by (seed, image index) (purpose `vaePosterior`, step 0; step 1 for
/// the flipped image), optionally the flipped image's latent, the label and the path.
///
/// Shards: `shards/shard-NNNNNN.safetensors` (`mean`, `std`, `latent`, [`latent_flip`, `mean_flip`, `std_flip`] as
/// float32 (n, C, h, w); `label`, `index` as int64 (n); metadata `paths`, a JSON array, and
/// the VAE's `scaling_factor` [`shift_factor`]).
/// Finalize: `classes.txt` (line k = class k) and `manifest.json`. `--layout fast-dit` also
/// writes fast-DiT's per-image `features/{i}.npy` (1, C, h, w) scaled and `labels/{i}.npy` (1,).
public struct EncodeSpec: Codable, Equatable {
    public var outputDir: String
    public var folder: String
    public var vae: String
    public var imageSize: Int
    public var seed: UInt64
    public var flip: Bool
    public var batch: Int
    public var imagesPerShard: Int
    public var fastDiTLayout: Bool

    public init(outputDir: String, folder: String, vae: String, imageSize: Int = 256, seed: UInt64 = 0, flip: Bool = false,
                batch: Int = 8, imagesPerShard: Int = 256, fastDiTLayout: Bool = false) {
        self.outputDir = outputDir; self.folder = folder; self.vae = vae; self.imageSize = imageSize; self.seed = seed
        self.flip = flip; self.batch = batch; self.imagesPerShard = imagesPerShard; self.fastDiTLayout = fastDiTLayout
    }
}

/// A shard's images (paths relative to the folder, labels), fixed at planning time so
/// workers never rescan the folder.
struct EncodeShardSpec: Codable {
    var paths: [String]
    var labels: [Int]
}

public struct EncodeKind: JobKind {
    public init() {}
    public var name: String { "encode" }

    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(EncodeSpec.self, spec, kind: name)
        guard s.imageSize > 0, s.batch > 0, s.imagesPerShard > 0 else {
            throw JobError.badSpec(kind: name, reason: "image size, batch and images per shard must be > 0")
        }
        let folder = try ImageFolder(root: s.folder)
        let prefix = folder.root.hasSuffix("/") ? folder.root : folder.root + "/"
        let shards = try JobKinds.ranges(items: folder.items.count, perShard: s.imagesPerShard).map { r -> ShardPlan in
            let items = folder.items[r]
            let sub = EncodeShardSpec(paths: items.map { $0.path.hasPrefix(prefix) ? String($0.path.dropFirst(prefix.count)) : $0.path },
                                      labels: items.map(\.label))
            return ShardPlan(itemStart: r.lowerBound, itemEnd: r.upperBound, spec: try JobKinds.encode(sub))
        }
        return JobPlan(outputDir: s.outputDir, shards: shards)
    }

    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] {
        let s = try JobKinds.decode(EncodeSpec.self, spec, kind: name)
        let folder = try ImageFolder(root: s.folder)
        var out: [FileDigest] = []
        out.append(try OutputFileWriter.write(Data((folder.classes.joined(separator: "\n") + "\n").utf8),
                                              to: outputDir + "/classes.txt", relativeTo: outputDir))
        let shards = shardOutputs.filter { $0.path.hasPrefix("shards/") }.sorted { $0.path < $1.path }
        var recorded = s
        recorded.outputDir = "."   // the manifest lives in the output folder; it names no absolute output path
        let m = EncodeManifest(spec: recorded, images: folder.items.count, classes: folder.classes.count, shards: shards)
        out.append(try OutputFileWriter.write(try JobKinds.encode(m), to: outputDir + "/" + EncodeManifest.fileName,
                                              relativeTo: outputDir))
        return out
    }

    public func makeExecutor() -> ShardExecutor { EncodeExecutor() }
}

final class EncodeExecutor: ShardExecutor {
    private let vaes = ModelCache<AutoencoderKL>()
    var cachedModels: [String] { [vaes.key].compactMap { $0 } }

    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(EncodeSpec.self, task.jobSpec, kind: "encode")
        let shard = try JobKinds.decode(EncodeShardSpec.self, task.shardSpec, kind: "encode")
        guard shard.paths.count == task.itemEnd - task.itemStart, shard.labels.count == shard.paths.count else {
            throw JobError.badSpec(kind: "encode", reason: "shard \(task.shardIndex) lists \(shard.paths.count) images for \(task.itemEnd - task.itemStart) items")
        }
        let model = try vaes.model(s.vae) { try AutoencoderKL.load(folder: s.vae) }
        let noise = PhiloxNoise(seed: s.seed)
        let root = task.outputDir
        var errors: [ItemFailure] = []
        var good: [(index: Int, label: Int, path: String, image: ImageRGB8)] = []
        for (k, rel) in shard.paths.enumerated() {
            try control.checkpoint()
            let index = task.itemStart + k
            let full = s.folder + "/" + rel
            do {
                let img = try ADMPreprocess.centerCropArr(try ImageDecoder.decode(path: full), size: s.imageSize)
                good.append((index, shard.labels[k], rel, img))
            } catch {
                errors.append(ItemFailure(item: index, path: rel, reason: "\(error)"))
            }
        }
        var mean: [Tensor] = [], std: [Tensor] = [], latent: [Tensor] = [], flipped: [Tensor] = []
        var flippedMean: [Tensor] = [], flippedStd: [Tensor] = []
        for start in stride(from: 0, to: good.count, by: s.batch) {
            try control.checkpoint()
            let batch = Array(good[start..<min(start + s.batch, good.count)])
            let indices = batch.map(\.index)
            let dist = try model.encode(EncodeExecutor.tensor(batch.map(\.image)))
            mean.append(dist.mean)
            std.append(dist.std)
            let eps = try noise.normal(indices: indices, sampleShape: Array(dist.mean.shape.dropFirst()), purpose: .vaePosterior)
            latent.append(model.scaled(try dist.sample(eps: eps)))
            if s.flip {
                let fd = try model.encode(EncodeExecutor.tensor(batch.map { $0.image.flippedHorizontally() }))
                let feps = try noise.normal(indices: indices, sampleShape: Array(fd.mean.shape.dropFirst()),
                                            purpose: .vaePosterior, step: 1)
                flipped.append(model.scaled(try fd.sample(eps: feps)))
                flippedMean.append(fd.mean)
                flippedStd.append(fd.std)
            }
        }
        var outputs: [FileDigest] = []
        let shardName = EncodeManifest.shardPath(task.shardIndex)
        var w = SafeTensorsWriter()
        if !good.isEmpty {
            w.add("mean", Tensor.concat(mean))
            w.add("std", Tensor.concat(std))
            w.add("latent", Tensor.concat(latent))
            if s.flip {
                w.add("latent_flip", Tensor.concat(flipped))
                w.add("mean_flip", Tensor.concat(flippedMean))
                w.add("std_flip", Tensor.concat(flippedStd))
            }
        }
        w.add("label", int64: good.map { Int64($0.label) })
        w.add("index", int64: good.map { Int64($0.index) })
        w.metadata["paths"] = String(decoding: try JSONEncoder().encode(good.map(\.path)), as: UTF8.self)
        // The scaling `latent` was made with, so a reader can re-draw scaled posterior samples
        // from mean and std (the noise job's `--x0 resample`).
        w.metadata["scaling_factor"] = "\(model.config.scalingFactor)"
        if let shift = model.config.shiftFactor { w.metadata["shift_factor"] = "\(shift)" }
        outputs.append(try OutputFileWriter.write(try w.encoded(), to: root + "/" + shardName, relativeTo: root))
        if s.fastDiTLayout, !good.isEmpty {
            let lat = Tensor.concat(latent)
            let per = lat.count / good.count
            let shape = [1] + Array(lat.shape.dropFirst())
            for (r, g) in good.enumerated() {
                let one = Tensor(shape: shape, values: Array(UnsafeBufferPointer(start: lat.data + r * per, count: per)))
                outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(one)), to: root + "/" + EncodeLayout.features(g.index),
                                                          relativeTo: root))
                outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(int64: [Int64(g.label)], shape: [1])),
                                                          to: root + "/" + EncodeLayout.labels(g.index), relativeTo: root))
            }
        }
        return ShardReport(outputs: outputs, itemErrors: errors)
    }

    /// ADM's `arr.astype(np.float32) / 127.5 - 1`, HWC -> (N, 3, H, W).
    static func tensor(_ images: [ImageRGB8]) -> Tensor {
        let h = images[0].height, w = images[0].width, plane = h * w
        let t = Tensor(uninitialized: [images.count, 3, h, w])
        for (n, img) in images.enumerated() {
            img.pixels.withUnsafeBufferPointer { px in
                let base = t.data + n * 3 * plane
                for p in 0..<plane {
                    for c in 0..<3 { base[c * plane + p] = Float(px[p * 3 + c]) / 127.5 - 1 }
                }
            }
        }
        return t
    }
}
