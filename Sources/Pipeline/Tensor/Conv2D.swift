import Foundation

/// Geometry of a 2-D convolution (`nn.Conv2d`, groups = 1, dilation = 1),
/// with per-side padding so that asymmetric pads (the VAE's (0,1,0,1)) need no copy.
public struct Conv2DGeometry: Equatable, Sendable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padBottom: Int, padLeft: Int, padRight: Int

    public init(kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) {
        kernelH = kernel.0; kernelW = kernel.1
        strideH = stride.0; strideW = stride.1
        padTop = padding.0; padBottom = padding.0; padLeft = padding.1; padRight = padding.1
    }

    public init(kernel: (Int, Int), stride: (Int, Int), padTop: Int, padBottom: Int, padLeft: Int, padRight: Int) {
        kernelH = kernel.0; kernelW = kernel.1
        strideH = stride.0; strideW = stride.1
        self.padTop = padTop; self.padBottom = padBottom; self.padLeft = padLeft; self.padRight = padRight
    }

    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        ((height + padTop + padBottom - kernelH) / strideH + 1,
         (width + padLeft + padRight - kernelW) / strideW + 1)
    }
}

public enum Convolution {
    /// Upper bound on the im2col buffer, in floats; larger outputs are tiled by rows.
    public static let columnBudget = 8 << 20

    /// out = conv2d(x, weight) + bias for x (N, Cin, H, W), weight (Cout, Cin, kh, kw).
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, geometry g: Conv2DGeometry,
                              columnBudget: Int = Convolution.columnBudget) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d: input \(x.shape), weight \(weight.shape)")
        let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
        let cout = weight.shape[0]
        precondition(weight.shape[1] == cin && weight.shape[2] == g.kernelH && weight.shape[3] == g.kernelW,
                     "conv2d: weight \(weight.shape) does not fit input \(x.shape) and kernel \(g.kernelH)x\(g.kernelW)")
        let (oh, ow) = g.outputSize(height: h, width: w)
        precondition(oh > 0 && ow > 0, "conv2d: input \(x.shape) too small for kernel")
        let out = Tensor(uninitialized: [n, cout, oh, ow])
        let kdim = cin * g.kernelH * g.kernelW
        let pointwise = g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
            && g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0
        let rowsPerTile = pointwise ? oh : max(1, min(oh, columnBudget / max(kdim * ow, 1)))
        let cols = pointwise ? nil : Tensor(uninitialized: [kdim * rowsPerTile * ow])
        for b in 0..<n {
            let xin = x.data + b * cin * h * w
            let o = out.data + b * cout * oh * ow
            var r0 = 0
            while r0 < oh {
                let rows = min(rowsPerTile, oh - r0)
                let tile = rows * ow
                let src: UnsafePointer<Float>
                if let cols {
                    im2col(xin, channels: cin, height: h, width: w, geometry: g, outWidth: ow,
                           rowStart: r0, rows: rows, into: cols.data)
                    src = UnsafePointer(cols.data)
                } else {
                    src = UnsafePointer(xin)
                }
                if let bias {
                    for c in 0..<cout {
                        let p = o + c * oh * ow + r0 * ow
                        p.update(repeating: bias.data[c], count: tile)
                    }
                }
                BLAS.sgemm(m: cout, n: tile, k: kdim, a: weight.data, lda: kdim, b: src, ldb: tile,
                           beta: bias == nil ? 0 : 1, c: o + r0 * ow, ldc: oh * ow)
                r0 += rows
            }
        }
        return out
    }

    /// Unfolds output rows `rowStart..<rowStart+rows` into a (Cin·kh·kw, rows·ow) matrix.
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int,
                       geometry g: Conv2DGeometry, outWidth ow: Int, rowStart: Int, rows: Int,
                       into col: UnsafeMutablePointer<Float>) {
        let kk = g.kernelH * g.kernelW
        let tile = rows * ow
        parallelFor(channels * kk, grain: max(1, 16384 / max(tile, 1))) { s, e in
            for rIdx in s..<e {
                let c = rIdx / kk
                let ki = (rIdx % kk) / g.kernelW
                let kj = rIdx % g.kernelW
                let dst = col + rIdx * tile
                let plane = x + c * h * w
                for r in 0..<rows {
                    let iy = (rowStart + r) * g.strideH - g.padTop + ki
                    let d = dst + r * ow
                    if iy < 0 || iy >= h {
                        d.update(repeating: 0, count: ow)
                        continue
                    }
                    let srow = plane + iy * w
                    if g.strideW == 1 {
                        // Contiguous run: zero the padded ends, copy the middle.
                        let x0 = kj - g.padLeft
                        var j = 0
                        while j < ow && x0 + j < 0 { d[j] = 0; j += 1 }
                        let end = min(ow, w - x0)
                        if end > j { (d + j).update(from: srow + x0 + j, count: end - j); j = end }
                        while j < ow { d[j] = 0; j += 1 }
                    } else {
                        for j in 0..<ow {
                            let ix = j * g.strideW - g.padLeft + kj
                            d[j] = (ix >= 0 && ix < w) ? srow[ix] : 0
                        }
                    }
                }
            }
        }
    }
}
