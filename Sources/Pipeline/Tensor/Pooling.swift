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
        if k == 3 && p == 0 {
            // Unpadded 3×3 (Inception's grid reductions): every window is in-image.
            parallelFor(planes, grain: max(1, 8192 / max(oh * ow, 1))) { a, b in
                for pl in a..<b {
                    let src = x + pl * h * w, dst = out + pl * oh * ow
                    for oy in 0..<oh {
                        let r0 = src + oy * s * w, r1 = r0 + w, r2 = r1 + w
                        let d = dst + oy * ow
                        for ox in 0..<ow {
                            let c = ox * s
                            let m0 = max(max(r0[c], r0[c + 1]), r0[c + 2])
                            let m1 = max(max(r1[c], r1[c + 1]), r1[c + 2])
                            let m2 = max(max(r2[c], r2[c + 1]), r2[c + 2])
                            d[ox] = max(max(m0, m1), m2)
                        }
                    }
                }
            }
            return
        }
        forEachWindow(x, planes: planes, height: h, width: w, kernel: k, stride: s, padding: p, out: out) { src, y0, y1, x0, x1, _, _ in
            var m = -Float.infinity
            for yy in y0..<y1 { let r = src + yy * w; for xx in x0..<x1 { m = max(m, r[xx]) } }
            return m
        }
    }

    /// The general pooling loop: for every plane and output position, `reduce` gets the plane,
    /// the window's in-image rows y0..<y1 and columns x0..<x1 and the output position (oy, ox),
    /// and returns the output value.
    @inline(__always)
    static func forEachWindow(_ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                              kernel k: Int, stride s: Int, padding p: Int, out: UnsafeMutablePointer<Float>,
                              _ reduce: (_ src: UnsafePointer<Float>, _ y0: Int, _ y1: Int, _ x0: Int, _ x1: Int,
                                         _ oy: Int, _ ox: Int) -> Float) {
        let oh = outputSize(h, kernel: k, stride: s, padding: p), ow = outputSize(w, kernel: k, stride: s, padding: p)
        parallelFor(planes, grain: max(1, 8192 / max(oh * ow, 1))) { a, b in
            for pl in a..<b {
                let src = x + pl * h * w, dst = out + pl * oh * ow
                for oy in 0..<oh {
                    let y0 = max(oy * s - p, 0), y1 = min(oy * s - p + k, h)
                    for ox in 0..<ow {
                        let x0 = max(ox * s - p, 0), x1 = min(ox * s - p + k, w)
                        dst[oy * ow + ox] = reduce(src, y0, y1, x0, x1, oy, ox)
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
        if k == 3 && s == 1 && p == 1 && !countIncludePad && h >= 2 && w >= 2 {
            avgPool3x3ExcludingPad(x, planes: planes, height: h, width: w, out: out)
            return
        }
        forEachWindow(x, planes: planes, height: h, width: w, kernel: k, stride: s, padding: p, out: out) { src, y0, y1, x0, x1, oy, ox in
            var acc: Float = 0
            for yy in y0..<y1 { let r = src + yy * w; for xx in x0..<x1 { acc += r[xx] } }
            let div = countIncludePad
                ? (min(oy * s - p + k, h + p) - (oy * s - p)) * (min(ox * s - p + k, w + p) - (ox * s - p))
                : (y1 - y0) * (x1 - x0)
            return acc / Float(div)
        }
    }

    /// 3×3, stride 1, padding 1, `count_include_pad=False` (the FID blocks' pool
    /// branches), separably: three-row sums, then three-column sums, then the
    /// in-image count (4, 6 or 9). Same additions as the direct window sum up to
    /// float rounding order.
    static func avgPool3x3ExcludingPad(_ x: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                                       out: UnsafeMutablePointer<Float>) {
        parallelFor(planes, grain: max(1, 8192 / max(h * w, 1))) { a, b in
            let colSum = UnsafeMutablePointer<Float>.allocate(capacity: w)
            defer { colSum.deallocate() }
            for pl in a..<b {
                let src = x + pl * h * w, dst = out + pl * h * w
                for oy in 0..<h {
                    let y0 = max(oy - 1, 0), y1 = min(oy + 1, h - 1)
                    let r0 = src + y0 * w
                    for i in 0..<w { colSum[i] = r0[i] }
                    var yy = y0 + 1
                    while yy <= y1 { let r = src + yy * w; for i in 0..<w { colSum[i] += r[i] }; yy += 1 }
                    let rows = Float(y1 - y0 + 1)
                    let d = dst + oy * w
                    d[0] = (colSum[0] + colSum[1]) / (rows * 2)
                    let inv3 = rows * 3
                    if w > 2 { for ox in 1..<(w - 1) { d[ox] = (colSum[ox - 1] + colSum[ox] + colSum[ox + 1]) / inv3 } }
                    d[w - 1] = (colSum[w - 2] + colSum[w - 1]) / (rows * 2)
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
