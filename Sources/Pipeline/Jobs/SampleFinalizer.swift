import Foundation
import PipelineFiles
import PipelineImaging

/// The `sample` job's finalize step (coordinator side, once): labels, the ADM sample batch
/// .npz streamed from the PNGs (or the concatenated latents without a VAE), and the recipe.
struct SampleFinalizer {
    let spec: SampleSpec
    let outputDir: String

    func run() throws -> [FileDigest] {
        let root = outputDir
        let shards = JobKinds.ranges(items: spec.numSamples, perShard: spec.samplesPerShard)
        var labels: [Int64] = []
        labels.reserveCapacity(spec.numSamples)
        for i in shards.indices {
            labels += try NPY.read(root + String(format: "/labels/shard-%06d.npy", i)).int64s()
        }
        guard labels.count == spec.numSamples else {
            throw JobError.verification(path: root + "/labels", reason: "\(labels.count) labels for \(spec.numSamples) samples")
        }
        var out: [FileDigest] = []
        out.append(try OutputFileWriter.write(NPY.encode(NPYArray(int64: labels, shape: [labels.count])),
                                              to: root + "/labels.npy", relativeTo: root))
        let recipeName: String
        if spec.vae != nil {
            let first = try ImageDecoder.decode(path: root + "/" + SampleLayout.png(0))
            let (h, w) = (first.height, first.width)
            let name = "samples_\(spec.numSamples)x\(h)x\(w)x3.npz"
            let npz = try NPZWriter(path: root + "/" + name)
            try npz.beginArray("arr_0", dtype: .uint8, shape: [spec.numSamples, h, w, 3])
            for i in 0..<spec.numSamples {
                let img = i == 0 ? first : try ImageDecoder.decode(path: root + "/" + SampleLayout.png(i))
                guard img.width == w, img.height == h else {
                    throw JobError.verification(path: SampleLayout.png(i), reason: "\(img.width)x\(img.height), expected \(w)x\(h)")
                }
                try img.pixels.withUnsafeBytes { try npz.append($0) }
            }
            try npz.endArray()
            try npz.add("arr_1", NPYArray(int64: labels, shape: [labels.count]))
            try npz.finish()
            out.append(try FileDigest.of(name, under: outputDir))
            recipeName = String(name.dropLast(4)) + ".json"
        } else {
            // latents.npy: the shards' data sections behind one header, streamed.
            let path = { (i: Int) in root + String(format: "/latents/shard-%06d.npy", i) }
            let first = try NPY.read(path(0))
            let w = try OutputFileWriter(path: root + "/latents.npy")
            try w.write(NPY.header(dtype: .float32, shape: [spec.numSamples] + first.shape.dropFirst()))
            var rows = 0
            for i in shards.indices {
                let a = i == 0 ? first : try NPY.read(path(i))
                guard a.dtype == .float32, Array(a.shape.dropFirst()) == Array(first.shape.dropFirst()) else {
                    w.abandon()
                    throw JobError.verification(path: path(i), reason: "shape \(a.shape) does not match \(first.shape)")
                }
                rows += a.shape.first ?? 0
                try w.write(a.data)
            }
            guard rows == spec.numSamples else {
                w.abandon()
                throw JobError.verification(path: root + "/latents", reason: "\(rows) latents for \(spec.numSamples) samples")
            }
            out.append(try w.commit(relativeTo: root))
            recipeName = "latents.json"
        }
        out.append(try OutputFileWriter.write(try spec.recipe(), to: root + "/" + recipeName, relativeTo: root))
        return out
    }
}
