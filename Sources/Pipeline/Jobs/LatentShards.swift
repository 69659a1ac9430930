import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiffusion

/// The `encode` job's `manifest.json`: its spec (output folder "."), the number of images
/// and classes, and every shard with size and SHA-256, in shard order.
public struct EncodeManifest: Codable, Equatable {
    public var spec: EncodeSpec
    public var images: Int
    public var classes: Int
    public var shards: [FileDigest]

    public init(spec: EncodeSpec, images: Int, classes: Int, shards: [FileDigest]) {
        self.spec = spec; self.images = images; self.classes = classes; self.shards = shards
    }

    public static let fileName = "manifest.json"

    /// The manifest at `path`: an encode output folder or its `manifest.json`. Returns it with
    /// the folder its shard paths are relative to. Every problem names the file.
    public static func load(_ path: String) throws -> (manifest: EncodeManifest, folder: String) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw JobError.io(path: path, reason: "no such encode output folder or manifest")
        }
        let file = isDir.boolValue ? (path.hasSuffix("/") ? path : path + "/") + fileName : path
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
            throw JobError.io(path: file, reason: "cannot read the encode manifest (did the encode job finish?): \(error.localizedDescription)")
        }
        let m: EncodeManifest
        do { m = try JSONDecoder().decode(EncodeManifest.self, from: data) } catch {
            throw JobError.badInput(path: file, reason: "not an encode job manifest (truncated or corrupt?): \(error)")
        }
        try m.validate(file)
        return (m, folder)
    }

    /// The shard list must be the encode plan's: `shards/shard-NNNNNN.safetensors` for every
    /// range of `imagesPerShard` images, in order.
    func validate(_ file: String) throws {
        func bad(_ r: String) -> JobError { .badInput(path: file, reason: r) }
        guard images >= 0, spec.imagesPerShard > 0 else { throw bad("images \(images), images per shard \(spec.imagesPerShard)") }
        let expected = JobKinds.ranges(items: images, perShard: spec.imagesPerShard).count
        guard shards.count == expected else {
            throw bad("\(shards.count) shards listed for \(images) images at \(spec.imagesPerShard) per shard (expected \(expected))")
        }
        for (j, s) in shards.enumerated() where s.path != EncodeManifest.shardPath(j) || s.size < 8 {
            throw bad("shard \(j) is listed as \(s.path) (\(s.size) bytes), expected \(EncodeManifest.shardPath(j))")
        }
    }

    public static func shardPath(_ index: Int) -> String { String(format: "shards/shard-%06d.safetensors", index) }

    /// Image indices of encode shard `j`.
    public func imageRange(ofShard j: Int) -> Range<Int> {
        (j * spec.imagesPerShard)..<min((j + 1) * spec.imagesPerShard, images)
    }
}

/// One encode shard read back: the rows (images that encoded) with their image index,
/// label, posterior mean and std (unscaled), scaled latent, and the scaling of the VAE
/// that wrote it.
public struct LatentShard {
    public let path: String
    public let index: [Int]
    public let label: [Int]
    /// The images' paths (relative to the encoded folder), from the metadata when present.
    public let paths: [String]?
    /// (n, C, h, w) each; nil when the shard holds no rows.
    public let mean: Tensor?
    public let std: Tensor?
    public let latent: Tensor?
    /// The flipped image's posterior and latent (encode `--flip`); nil when not encoded.
    public let flipped: (mean: Tensor, std: Tensor, latent: Tensor)?
    /// From the shard's metadata; nil for shards written before it was recorded.
    public let scaling: LatentScaling?

    public var rows: Int { index.count }
    /// (C, h, w).
    public var sampleShape: [Int] { mean.map { Array($0.shape.dropFirst()) } ?? [] }

    /// Reads and checks `path` against its manifest entry (size, SHA-256) and its image
    /// range. A missing file is an `io` error (it may appear: shared folders); a file that
    /// is there but wrong is `badInput`. Both name the file.
    public static func load(path: String, expected: FileDigest?, images: Range<Int>) throws -> LatentShard {
        guard FileManager.default.fileExists(atPath: path) else { throw JobError.io(path: path, reason: "latent shard missing") }
        func bad(_ r: String) -> JobError { .badInput(path: path, reason: r) }
        if let expected {
            let (size, sha) = try SHA256.file(path)
            guard size == expected.size else {
                throw bad("\(size) bytes, the encode manifest says \(expected.size) (\(size < expected.size ? "truncated" : "altered"))")
            }
            guard sha == expected.sha256 else { throw bad("SHA-256 differs from the encode manifest's (corrupt or altered)") }
        }
        let f: SafeTensorsFile
        do { f = try SafeTensorsFile(path: path) } catch { throw bad("not a readable latent shard: \(error)") }
        do {
            let index = try f.int64s("index").map(Int.init), label = try f.int64s("label").map(Int.init)
            guard f.info("index")?.shape == [index.count], f.info("label")?.shape == [index.count] else {
                throw bad("index and label must be 1-D of the same length")
            }
            for (r, i) in index.enumerated() where !images.contains(i) || (r > 0 && index[r - 1] >= i) {
                throw bad("row \(r) has image index \(i): outside the shard's images \(images) or out of order")
            }
            var scaling: LatentScaling?
            if let s = f.metadata["scaling_factor"] {
                guard let factor = Float(s), factor.isFinite, factor != 0 else { throw bad("bad scaling_factor \"\(s)\"") }
                var shift: Float?
                if let t = f.metadata["shift_factor"] {
                    guard let v = Float(t), v.isFinite else { throw bad("bad shift_factor \"\(t)\"") }
                    shift = v
                }
                scaling = LatentScaling(factor: factor, shift: shift)
            }
            guard !index.isEmpty else {
                return LatentShard(path: path, index: [], label: [], paths: [], mean: nil, std: nil, latent: nil, flipped: nil, scaling: scaling)
            }
            guard let shape = f.info("mean")?.shape, shape.count == 4, shape[0] == index.count, shape.dropFirst().allSatisfy({ $0 > 0 }) else {
                throw bad("mean must be (\(index.count), C, h, w), found \(f.info("mean")?.shape.description ?? "none")")
            }
            let flipKeys = ["latent_flip", "mean_flip", "std_flip"]
            let hasFlips = flipKeys.allSatisfy { f.info($0) != nil }
            for key in ["mean", "std", "latent"] + (hasFlips ? flipKeys : []) where f.info(key)?.dtype != .f32 {
                throw bad("\(key) must be float32")
            }
            let flipped = hasFlips ? (try f.tensor("mean_flip", shape: shape), try f.tensor("std_flip", shape: shape),
                                      try f.tensor("latent_flip", shape: shape)) : nil
            let paths = f.metadata["paths"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
            return LatentShard(path: path, index: index, label: label, paths: paths?.count == index.count ? paths : nil, mean: try f.tensor("mean", shape: shape),
                               std: try f.tensor("std", shape: shape), latent: try f.tensor("latent", shape: shape),
                               flipped: flipped, scaling: scaling)
        } catch let e as JobError {
            throw e
        } catch {
            throw bad("\(error)")
        }
    }
}
