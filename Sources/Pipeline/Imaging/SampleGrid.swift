import Foundation
import PipelineTensor

/// The sample sheet DiT's `sample.py` saves:
/// `save_image(samples, "sample.png", nrow=4, normalize=True, value_range=(-1, 1))`,
/// i.e. torchvision's `make_grid` then `mul(255).add_(0.5).clamp_(0, 255)` to uint8.
public enum SampleGrid {
    /// torchvision `make_grid(samples, nrow, padding, normalize, value_range, pad_value)`
    /// followed by `save_image`'s quantisation, in float32 as torch computes it.
    ///
    /// Quirks kept: normalisation happens before padding (the pad value is used
    /// as given, 0 -> black); a batch of one is returned without any padding;
    /// one-channel images are repeated to three; `valueRange == nil` with
    /// `normalize` uses the batch's min and max; the uint8 cast truncates.
    public static func make(_ samples: Tensor, nrow: Int = 8, padding: Int = 2, normalize: Bool = true,
                            valueRange: (low: Float, high: Float)? = (-1, 1), padValue: Float = 0) throws -> ImageRGB8 {
        guard samples.shape.count == 4, samples.shape[1] == 1 || samples.shape[1] == 3,
              samples.shape[0] > 0, samples.shape[2] > 0, samples.shape[3] > 0 else {
            throw ImageError.invalid(file: "<samples>", reason: "sample grid needs N x 3 x H x W (or N x 1 x H x W), got \(samples.shape)")
        }
        guard nrow > 0, padding >= 0 else {
            throw ImageError.invalid(file: "<samples>", reason: "sample grid needs nrow > 0 and padding >= 0")
        }
        let n = samples.shape[0], c = samples.shape[1], h = samples.shape[2], w = samples.shape[3]

        // norm_ip: clamp_(low, high), sub_(low), div_(max(high - low, 1e-5)).
        var low: Float = 0, high: Float = 1
        if normalize {
            if let r = valueRange {
                low = r.low; high = r.high
            } else {
                let v = samples.values
                low = v.min() ?? 0; high = v.max() ?? 1
            }
        }
        // Python computes max(high - low, 1e-5) in float64; torch divides the
        // float32 tensor by that scalar rounded to float32.
        let divisor = Float(max(Double(high) - Double(low), 1e-5))

        // mul(255).add_(0.5).clamp_(0, 255).to(uint8): float32 steps, truncation.
        // NaN (a diverged sample) becomes 0 instead of trapping.
        @inline(__always) func toByte(_ v: Float) -> UInt8 {
            let q = v * 255 + 0.5
            if q.isNaN { return 0 }
            return q <= 0 ? 0 : (q >= 255 ? 255 : UInt8(q))
        }
        @inline(__always) func quantise(_ x: Float) -> UInt8 {
            guard normalize else { return toByte(x) }
            if x.isNaN { return 0 }
            return toByte((min(max(x, low), high) - low) / divisor)
        }

        let xmaps = n == 1 ? 1 : min(nrow, n)
        let ymaps = (n + xmaps - 1) / xmaps
        let pad = n == 1 ? 0 : padding
        let gw = n == 1 ? w : (w + pad) * xmaps + pad
        let gh = n == 1 ? h : (h + pad) * ymaps + pad
        // make_grid pads after normalising: the pad value is only quantised.
        let padPixel = toByte(padValue)
        var grid = ImageRGB8(width: gw, height: gh)
        grid.pixels.withUnsafeMutableBufferPointer { g in
            for i in 0..<g.count { g[i] = padPixel }
            let src = samples.data
            for k in 0..<n {
                let gx = (k % xmaps) * (w + pad) + pad, gy = (k / xmaps) * (h + pad) + pad
                for y in 0..<h {
                    for x in 0..<w {
                        let o = ((gy + y) * gw + gx + x) * 3
                        for ch in 0..<3 {
                            let sc = c == 1 ? 0 : ch
                            g[o + ch] = quantise(src[((k * c + sc) * h + y) * w + x])
                        }
                    }
                }
            }
        }
        return grid
    }

    /// Writes the grid PNG atomically.
    public static func save(_ samples: Tensor, to path: String, nrow: Int = 4, padding: Int = 2,
                            valueRange: (low: Float, high: Float)? = (-1, 1)) throws {
        let grid = try make(samples, nrow: nrow, padding: padding, normalize: true, valueRange: valueRange)
        try PNGWriter.write(grid, to: path)
    }
}
