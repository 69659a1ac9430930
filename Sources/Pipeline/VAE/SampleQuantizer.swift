import Foundation
import PipelineTensor

/// Decoded images → uint8 pixels exactly as DiT's `sample_ddp.py` does it:
/// `torch.clamp(127.5 * samples + 128.0, 0, 255).permute(0, 2, 3, 1).to("cpu", dtype=torch.uint8)`.
/// Quirks copied: the offset is 128 (not 127.5), so a value rounds to the nearest level only
/// because the cast truncates; the multiply and the add round separately in float32; NaN
/// (undefined in PyTorch's cast) becomes 0.
public enum SampleQuantizer {
    @inline(__always)
    public static func quantize(_ x: Float) -> UInt8 {
        let scaled = 127.5 * x                 // first float32 rounding (a separate tensor op in PyTorch)
        let shifted = scaled + 128             // second rounding
        guard shifted == shifted else { return 0 }
        return UInt8(min(max(shifted, 0), 255).rounded(.towardZero))
    }

    /// (N, C, H, W) floats → N·H·W·C bytes, NHWC.
    public static func uint8NHWC(_ x: Tensor) -> [UInt8] {
        precondition(x.rank == 4, "uint8NHWC: input \(x.shape)")
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3]
        var out = [UInt8](repeating: 0, count: x.count)
        out.withUnsafeMutableBufferPointer { dst in
            let d = dst.baseAddress!
            for b in 0..<n {
                for ch in 0..<c {
                    let src = x.data + (b * c + ch) * hw
                    let o = d + b * hw * c + ch
                    for i in 0..<hw { o[i * c] = quantize(src[i]) }
                }
            }
        }
        return out
    }
}
