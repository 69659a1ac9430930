import Foundation

/// Convolutions on the channel-major batch layout (C, N, H, W): each channel
/// row holds all N images' planes back to back, so a convolution over the
/// whole batch is one GEMM, out[Cout × N·OH·OW] = W[Cout × K] · cols[K × N·OH·OW],
/// a 1×1 convolution needs no unfolding at all, and a channel concatenation
/// is writing into a row offset of a shared output (`ldOut`).
public enum PlanarConv {
    /// Upper bound on the unfolded column buffer, in floats; larger outputs are tiled by columns.
    public static let columnBudget = 4 << 20

    /// Multiply-add FLOPs (2·M·N·K) of every convolution run so far in this process, counted
    /// as im2col + sgemm would do them also where a fast algorithm did fewer; benchmarks read
    /// it. A profiling counter, process-wide by nature, so it sits behind a lock.
    public static let flops = Locked(0.0)

    static func countFlops(_ c: PlanarConvolution, h: Int, w: Int, n: Int) {
        let (oh, ow) = c.geometry.outputSize(height: h, width: w)
        flops.withLock { $0 += 2 * Double(c.outChannels) * Double(c.weight.count / c.outChannels) * Double(n * oh * ow) }
    }

    /// out rows `0..<cout` (row stride `ldOut`, N·OH·OW columns each) =
    /// max(0, conv(x) + bias) when `relu`, else conv(x) + bias.
    /// x: (cin, n, h, w) contiguous; weight: (cout, cin·kh·kw).
    ///
    /// The output columns are split into tiles, a multiple of the thread count, that the
    /// threads take in turn: each unfolds its columns (unless 1×1), multiplies them by the
    /// weights in one single-threaded sgemm and adds bias + ReLU while the tile is in cache.
    /// One fork/join per convolution, and no BLAS thread pool spinning beside our threads.
    public static func conv(x: UnsafePointer<Float>, cin: Int, n: Int, h: Int, w: Int,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, cout: Int,
                            geometry g: Conv2DGeometry, relu: Bool,
                            out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let (oh, ow) = g.outputSize(height: h, width: w)
        let total = n * oh * ow
        let kdim = cin * g.kernelH * g.kernelW
        flops.withLock { $0 += 2 * Double(cout) * Double(kdim) * Double(total) }
        let pointwise = g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1
            && g.padTop == 0 && g.padBottom == 0 && g.padLeft == 0 && g.padRight == 0
        let threads = Threads.count
        // Tiles: at least one per thread; more when the threads' column buffers would exceed
        // the budget. Widths are multiples of 16 (whole register tiles).
        let budgetCols = pointwise ? total : max(16, columnBudget / max(threads * kdim, 1))
        var tiles = (total + budgetCols - 1) / budgetCols
        tiles = (max(tiles, threads) + threads - 1) / threads * threads
        let width = min(total, ((total + tiles - 1) / tiles + 15) / 16 * 16)
        tiles = (total + width - 1) / width
        BLAS.withThreads(1) {
            parallelFor(tiles, grain: 1) { first, last in
                let cols = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: kdim * width)
                defer { cols?.deallocate() }
                for tile in first..<last {
                    let j0 = tile * width, j1 = min(total, j0 + width)
                    if let cols {
                        im2col(x, cin: cin, n: n, h: h, w: w, geometry: g, oh: oh, ow: ow, columns: j0..<j1, into: cols)
                        BLAS.sgemm(m: cout, n: j1 - j0, k: kdim, a: weight, lda: kdim, b: cols, ldb: j1 - j0,
                                   beta: 0, c: out + j0, ldc: ldOut)
                    } else {
                        BLAS.sgemm(m: cout, n: j1 - j0, k: kdim, a: weight, lda: kdim, b: x + j0, ldb: total,
                                   beta: 0, c: out + j0, ldc: ldOut)
                    }
                    biasActivate(out + j0, rows: cout, cols: j1 - j0, ld: ldOut, bias: bias, relu: relu)
                }
            }
        }
    }

    /// out[r, :] = act(out[r, :] + bias[r]) over `rows` rows of `cols` values, on this thread.
    public static func biasActivate(_ out: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int,
                                    bias: UnsafePointer<Float>?, relu: Bool) {
        if bias == nil && !relu { return }
        for r in 0..<rows {
            let p = out + r * ld
            let b = bias?[r] ?? 0
            if relu {
                for i in 0..<cols { p[i] = max(p[i] + b, 0) }
            } else {
                for i in 0..<cols { p[i] += b }
            }
        }
    }

    /// Unfolds output columns `columns` (global index b·OH·OW + oy·OW + ox)
    /// into a (cin·kh·kw) × columns.count matrix, on this thread.
    static func im2col(_ x: UnsafePointer<Float>, cin: Int, n: Int, h: Int, w: Int, geometry g: Conv2DGeometry,
                       oh: Int, ow: Int, columns: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        let kk = g.kernelH * g.kernelW
        let width = columns.count
        let plane = oh * ow
        do {
            for rIdx in 0..<(cin * kk) {
                let c = rIdx / kk
                let ki = (rIdx % kk) / g.kernelW
                let kj = rIdx % g.kernelW
                let dst = col + rIdx * width - columns.lowerBound
                var j = columns.lowerBound
                while j < columns.upperBound {
                    let b = j / plane
                    let rem = j - b * plane
                    let oy = rem / ow
                    let ox0 = rem - oy * ow
                    let run = min(ow - ox0, columns.upperBound - j)
                    let d = dst + j
                    let iy = oy * g.strideH - g.padTop + ki
                    if iy < 0 || iy >= h {
                        d.update(repeating: 0, count: run)
                    } else {
                        let srow = x + ((c * n + b) * h + iy) * w
                        if g.strideW == 1 {
                            let x0 = ox0 - g.padLeft + kj
                            var t = 0
                            while t < run && x0 + t < 0 { d[t] = 0; t += 1 }
                            let end = min(run, w - x0)
                            if end > t { (d + t).update(from: srow + x0 + t, count: end - t); t = end }
                            while t < run { d[t] = 0; t += 1 }
                        } else {
                            for t in 0..<run {
                                let ix = (ox0 + t) * g.strideW - g.padLeft + kj
                                d[t] = (ix >= 0 && ix < w) ? srow[ix] : 0
                            }
                        }
                    }
                    j += run
                }
            }
        }
    }
}

/// A convolution prepared for the channel-major layout: the weights as (Cout, Cin·kh·kw), and
/// their Winograd transform when the kernel has a fast algorithm (used when
/// `ConvolutionOptions.current.fastAlgorithms`).
public struct PlanarConvolution {
    public let inChannels: Int, outChannels: Int
    public let geometry: Conv2DGeometry
    /// (Cout, Cin·kh·kw).
    public let weight: Tensor
    public let bias: Tensor?
    let fast: FastAlgorithm?

    enum FastAlgorithm {
        /// F(4x4, 3x3); U: (36, Cout, Cin).
        case winograd3x3(Tensor)
        /// 1-D F(m, r) along an axis; U: (α, Cout, Cin).
        case winograd1D(Winograd1D, Winograd1D.Axis, Tensor)
    }

    /// Winograd needs enough input channels to amortise its transforms.
    public static let fastMinChannels = 8

    public init(weight: Tensor, bias: Tensor?, inChannels cin: Int, outChannels cout: Int, geometry g: Conv2DGeometry) {
        precondition(weight.count == cout * cin * g.kernelH * g.kernelW, "planar conv: weight \(weight.shape)")
        inChannels = cin; outChannels = cout; geometry = g
        self.weight = weight; self.bias = bias
        let unitStride = g.strideH == 1 && g.strideW == 1
        if !unitStride || cin < PlanarConvolution.fastMinChannels {
            fast = nil
        } else if g.kernelH == 3 && g.kernelW == 3 {
            fast = .winograd3x3(Winograd.transformWeights(weight.reshaped([cout, cin, 3, 3])))
        } else if g.kernelW > 1, let f = Winograd1D.preferred(kernel: g.kernelW) {
            // 1×r, and k×r as k accumulated 1×r rows (Inception's 5×5).
            fast = .winograd1D(f, .width, f.transformWeights(weight.data, cout: cout, cin: cin, taps: g.kernelH))
        } else if g.kernelW == 1, g.padLeft == 0, g.padRight == 0, let f = Winograd1D.preferred(kernel: g.kernelH) {
            fast = .winograd1D(f, .height, f.transformWeights(weight.data, cout: cout, cin: cin))
        } else {
            fast = nil
        }
    }

    /// The algorithm `apply` runs now, for profiles.
    public var algorithm: String {
        switch ConvolutionOptions.current.fastAlgorithms ? fast : nil {
        case .winograd3x3?: return "winograd F(4x4,3x3)"
        case let .winograd1D(f, _, _)?: return "winograd F(\(f.outputs),\(f.kernel))" + (geometry.kernelH > 1 && geometry.kernelW > 1 ? " x\(geometry.kernelH) rows" : "")
        case nil: return geometry.kernelH * geometry.kernelW == 1 && geometry.strideH == 1 ? "gemm" : "im2col"
        }
    }

    /// out rows `0..<Cout` (row stride `ldOut`) = conv(x) + bias (then ReLU) for x (Cin, N, H, W).
    public func apply(_ x: UnsafePointer<Float>, n: Int, h: Int, w: Int, relu: Bool,
                      out: UnsafeMutablePointer<Float>, ldOut: Int) {
        let g = geometry
        let options = ConvolutionOptions.current
        switch options.fastAlgorithms ? fast : nil {
        case let .winograd3x3(u)?:
            PlanarConv.countFlops(self, h: h, w: w, n: n)
            Winograd.conv3x3Planar(x: x, cin: inChannels, n: n, h: h, w: w, transformedWeight: u, bias: bias?.data,
                                   relu: relu, padTop: g.padTop, padBottom: g.padBottom, padLeft: g.padLeft,
                                   padRight: g.padRight, out: out, ldOut: ldOut, budget: options.planarChunkBudget)
        case let .winograd1D(f, axis, u)?:
            PlanarConv.countFlops(self, h: h, w: w, n: n)
            f.convPlanar(x: x, cin: inChannels, n: n, h: h, w: w, axis: axis,
                         padBefore: axis == .height ? g.padTop : g.padLeft,
                         padAfter: axis == .height ? g.padBottom : g.padRight,
                         taps: axis == .height ? 1 : g.kernelH, acrossPad: axis == .height ? (0, 0) : (g.padTop, g.padBottom),
                         transformedWeight: u, bias: bias?.data, relu: relu, out: out, ldOut: ldOut,
                         budget: options.planarChunkBudget)
        case nil:
            PlanarConv.conv(x: x, cin: inChannels, n: n, h: h, w: w, weight: weight.data, bias: bias?.data,
                            cout: outChannels, geometry: g, relu: relu, out: out, ldOut: ldOut)
        }
    }
}
