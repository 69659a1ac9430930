import Foundation
import PipelineTensor

extension ImageRGB8 {
    /// The model-side value of byte `v` in [-1, 1]: ADM's `ImageDataset` computes
    /// `arr.astype(np.float32) / 127.5 - 1`, DiT's `train.py` and fast-DiT's
    /// `extract_features.py` `ToTensor()` then `Normalize(0.5, 0.5)`, i.e.
    /// `(x / 255 - 0.5) / 0.5`; in float32 both give the same value for every byte.
    @inline(__always)
    public static func modelValue(_ v: UInt8) -> Float { Float(v) / 127.5 - 1 }

    /// The image as a [1, 3, H, W] float32 tensor in [-1, 1] (CHW, as the models take it).
    public func tensorCHW() -> Tensor {
        var table = [Float](repeating: 0, count: 256)
        for v in 0..<256 { table[v] = Self.modelValue(UInt8(v)) }
        let out = Tensor(uninitialized: [1, 3, height, width])
        let plane = width * height
        pixels.withUnsafeBufferPointer { src in
            let dst = out.data
            for i in 0..<plane {
                dst[i] = table[Int(src[3 * i])]
                dst[plane + i] = table[Int(src[3 * i + 1])]
                dst[2 * plane + i] = table[Int(src[3 * i + 2])]
            }
        }
        return out
    }
}
