import Foundation
import PipelineTensor
import PipelineFiles

/// Batch drivers around `FIDInceptionV3`: feature extraction for a
/// safetensors file of images (`dit-worker eval inception`), and for uint8
/// NHWC image batches (ADM `arr_0`).
public enum InceptionEval {
    /// For every input `imageK` (N, 3, H, W) in [0, 1], writes `pool3_K` (N, 2048)
    /// and `logits_K` (N, 1008) to `output`. Returns the keys written.
    @discardableResult
    public static func run(model: FIDInceptionV3, inputs: String, output: String,
                           mode: InceptionPreprocessing = .pytorchFID, batch: Int = 16) throws -> [String] {
        let src = try SafeTensorsFile(path: inputs)
        let imageKeys = src.keys.filter { $0.hasPrefix("image") && Int($0.dropFirst(5)) != nil }
        guard !imageKeys.isEmpty else {
            throw InceptionError.badInput("\(inputs): no tensors named imageK (has \(src.keys.prefix(8)))")
        }
        var w = SafeTensorsWriter(metadata: ["preprocessing": mode.rawValue])
        for key in imageKeys {
            let k = key.dropFirst(5)
            let images = try src.tensor(key)
            guard images.rank == 4, images.shape[1] == 3 else {
                throw InceptionError.badInput("\(inputs): '\(key)' has shape \(images.shape), expected (N, 3, H, W)")
            }
            var pools: [Tensor] = [], logits: [Tensor] = []
            var s = 0
            while s < images.shape[0] {
                let e = min(images.shape[0], s + max(batch, 1))
                let f = try model.features(images.slice(s..<e), mode: mode)
                pools.append(f.pool3); logits.append(f.logits)
                s = e
            }
            w.add("pool3_\(k)", pools.isEmpty ? Tensor(zeros: [0, 2048]) : Tensor.concat(pools))
            w.add("logits_\(k)", logits.isEmpty ? Tensor(zeros: [0, 1008]) : Tensor.concat(logits))
        }
        try w.write(to: output)
        return w.names
    }

    /// uint8 (N, H, W, 3) pixels → float (N, 3, H, W) in [0, 1] (`ToTensor`'s x / 255).
    public static func imagesFromNHWC(_ a: NPYArray) throws -> Tensor {
        guard a.dtype == .uint8, a.shape.count == 4, a.shape[3] == 3 else {
            throw InceptionError.badInput("expected uint8 images (N, H, W, 3), got \(a.dtype.rawValue) \(a.shape)")
        }
        let (n, h, w) = (a.shape[0], a.shape[1], a.shape[2])
        let out = Tensor(uninitialized: [n, 3, h, w])
        a.data.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self).baseAddress!
            for b in 0..<n {
                for c in 0..<3 {
                    let dst = out.data + (b * 3 + c) * h * w
                    let src = p + b * h * w * 3 + c
                    for i in 0..<(h * w) { dst[i] = Float(src[i * 3]) / 255 }
                }
            }
        }
        return out
    }

    /// Features of every image in an .npz's `arr_0`, read `batch` rows at a time;
    /// `body` sees each batch's features (and the raw batch) in order.
    public static func forEachBatch(model: FIDInceptionV3, npz: String, mode: InceptionPreprocessing, batch: Int,
                                    _ body: (InceptionFeatures, NPYArray) throws -> Void) throws {
        let file = try NPZFile(path: npz)
        var rows = try file.rows("arr_0", batch: batch)
        guard rows.dtype == .uint8, rows.shape.count == 4, rows.shape[3] == 3 else {
            throw InceptionError.badInput("\(npz): arr_0 is \(rows.dtype.rawValue) \(rows.shape), expected uint8 (N, H, W, 3)")
        }
        while let b = try rows.next() {
            try body(try model.features(try imagesFromNHWC(b), mode: mode), b)
        }
    }
}
