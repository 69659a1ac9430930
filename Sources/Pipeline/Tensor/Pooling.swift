import Foundation

/// 2-D pooling over independent H×W planes (any layout whose planes are
/// contiguous: NCHW, or the channel-major (C, N, H, W) batches of `PlanarConv`).
public enum Pooling {
    public static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
        (size + 2 * padding - kernel) / stride + 1
    }

    /// `F.max_pool2d(kernel, stride, padding)`: padded positions never win.
    public static func maxPool(_ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                               kernel k: Int, stride s: Int, padding p: Int, out: UnsafeMutablePointer<Float>) {
        let oh = outputSize(h, kernel: k, stride: s, padding: p), ow = outputSize(w, kernel: k, stride: s, padding: p)
        parallelFor(planes, grain: max(1, 8192 / max(oh * ow, 1))) { a, b in
            for pl in a..<b {
                let src = x + pl * h * w, dst = out + pl * oh * ow
                for oy in 0..<oh {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    for ox in 0..<ow {
                        let x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w)
                        var m = -Float.infinity
                        for yy in y0..<y1 { let r = src + yy * w; for xx in x0..<x1 { m = max(m, r[xx]) } }
                        dst[oy * ow + ox] = m
                    }
                }
            }
        }
    }

    /// `F.avg_pool2d(kernel, stride, padding, count_include_pad=...)`. With
    /// `countIncludePad: false` the divisor is the number of in-image elements
    /// of the window (pytorch-fid's FID blocks; torchvision's default is true).
    public static func avgPool(_ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                               kernel k: Int, stride s: Int, padding p: Int, countIncludePad: Bool,
                               out: UnsafeMutablePointer<Float>) {
        let oh = outputSize(h, kernel: k, stride: s, padding: p), ow = outputSize(w, kernel: k, stride: s, padding: p)
        parallelFor(planes, grain: max(1, 8192 / max(oh * ow, 1))) { a, b in
            for pl in a..<b {
                let src = x + pl * h * w, dst = out + pl * oh * ow
                for oy in 0..<oh {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    for ox in 0..<ow {
                        let x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w)
                        var acc: Float = 0
                        for yy in y0..<y1 { let r = src + yy * w; for xx in x0..<x1 { acc += r[xx] } }
                        let div = countIncludePad
                            ? (min(oy * s - p + k, h + p) - (oy * s - p)) * (min(ox * s - p + k, w + p) - (ox * s - p))
                            : (y1 - y0) * (x1 - x0)
                        dst[oy * ow + ox] = acc / Float(div)
                    }
                }
            }
        }
    }

    /// `adaptive_avg_pool2d(x, 1)`: the mean of each plane.
    public static func globalAverage(_ x: UnsafePointer<Float>, planes: Int, size: Int, out: UnsafeMutablePointer<Float>) {
        parallelFor(planes, grain: max(1, 16384 / max(size, 1))) { a, b in
            for pl in a..<b {
                let src = x + pl * size
                var acc: Float = 0
                for i in 0..<size { acc += src[i] }
                out[pl] = acc / Float(size)
            }
        }
    }
}
