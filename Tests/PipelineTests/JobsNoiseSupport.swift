import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineJobs

/// An encode job's output written directly (no VAE): `images` images of (4, 8, 8) latents,
/// `imagesPerShard` per shard, the images in `bad` absent (as bad images are), labels i % 10.
struct LatentSetBuilder {
    var images = 7
    var imagesPerShard = 3
    var bad: Set<Int> = [4]
    var scaling: Float? = 0.18215
    var shape = [4, 8, 8]
    /// Also the flipped image's posterior and latent (encode --flip): those of image i + 100.
    var flips = false
    var labelOf: (Int) -> Int64 = { Int64($0 % 10) }
    /// Images whose mean holds a NaN.
    var nan: Set<Int> = []

    func mean(_ i: Int) -> [Float] {
        (0..<Tensor.count(of: shape)).map { nan.contains(i) && $0 == 5 ? .nan : Float(($0 * 7 + i * 13) % 23) / 11.5 - 1 }
    }
    func std(_ i: Int) -> [Float] { (0..<Tensor.count(of: shape)).map { 0.05 + Float(($0 + i) % 5) * 0.02 } }
    func latent(_ i: Int) -> [Float] { zip(mean(i), std(i)).map { ($0 + 0.5 * $1) * 0.18215 } }

    @discardableResult
    func write(to dir: String) throws -> EncodeManifest {
        var digests: [FileDigest] = []
        for (j, r) in JobKinds.ranges(items: images, perShard: imagesPerShard).enumerated() {
            let good = r.filter { !bad.contains($0) }
            var w = SafeTensorsWriter()
            if !good.isEmpty {
                w.add("mean", Tensor(shape: [good.count] + shape, values: good.flatMap(mean)))
                w.add("std", Tensor(shape: [good.count] + shape, values: good.flatMap(std)))
                w.add("latent", Tensor(shape: [good.count] + shape, values: good.flatMap(latent)))
                if flips {
                    w.add("mean_flip", Tensor(shape: [good.count] + shape, values: good.flatMap { mean($0 + 100) }))
                    w.add("std_flip", Tensor(shape: [good.count] + shape, values: good.flatMap { std($0 + 100) }))
                    w.add("latent_flip", Tensor(shape: [good.count] + shape, values: good.flatMap { latent($0 + 100) }))
                }
            }
            w.add("label", int64: good.map(labelOf))
            w.metadata["paths"] = String(decoding: try JSONEncoder().encode(good.map { "img\($0).png" }), as: UTF8.self)
            w.add("index", int64: good.map(Int64.init))
            if let scaling { w.metadata["scaling_factor"] = "\(scaling)" }
            digests.append(try OutputFileWriter.write(try w.encoded(), to: dir + "/" + EncodeManifest.shardPath(j), relativeTo: dir))
        }
        let m = EncodeManifest(spec: EncodeSpec(outputDir: ".", folder: "/images", vae: "/vae", imageSize: 16,
                                                imagesPerShard: imagesPerShard),
                               images: images, classes: 10, shards: digests)
        _ = try OutputFileWriter.write(try JobKinds.encode(m), to: dir + "/manifest.json", relativeTo: dir)
        return m
    }
}

/// Rows of a noise job's output, keyed by (image index, draw).
struct NoiseRows {
    struct Row: Equatable {
        var t: Int64; var y: Int64; var flip: Int64?; var xT: [Float]; var eps: [Float]; var mse: Float?; var vb: Float?; var loss: Float?
    }
    var rows: [[Int64]: Row] = [:]
    var order: [[Int64]] = []

    init(_ outputDir: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: outputDir + "/shards").sorted()
        for name in names {
            let f = try SafeTensorsFile(path: outputDir + "/shards/" + name)
            let index = try f.int64s("index"), draw = try f.int64s("draw"), t = try f.int64s("t"), y = try f.int64s("y")
            guard !index.isEmpty else { continue }
            let xT = try f.tensor("x_t"), eps = try f.tensor("eps")
            let per = xT.count / index.count
            let mse = f.info("mse") == nil ? nil : try f.tensor("mse").values
            let vb = f.info("vb") == nil ? nil : try f.tensor("vb").values
            let loss = f.info("loss") == nil ? nil : try f.tensor("loss").values
            let flip = f.info("flip") == nil ? nil : try f.int64s("flip")
            for r in 0..<index.count {
                let key = [index[r], draw[r]]
                order.append(key)
                rows[key] = Row(t: t[r], y: y[r], flip: flip?[r], xT: Array(xT.values[(r * per)..<((r + 1) * per)]),
                                eps: Array(eps.values[(r * per)..<((r + 1) * per)]), mse: mse?[r], vb: vb?[r], loss: loss?[r])
            }
        }
    }
}
