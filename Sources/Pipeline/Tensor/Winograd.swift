import Foundation

/// 3x3, stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016):
/// each 4x4 output tile costs 36 multiplications per (input, output) channel pair instead of 144.
/// The 36 transform points become 36 independent GEMMs, U[p] (Cout×Cin) · V[p] (Cin×tiles),
/// done through BLAS. Interpolation points 0, ±1, ±2, ∞; in float32 the result differs from
/// the direct convolution by a few units of 1e-6 relative to the output's magnitude.
///
/// Memory is bounded: tiles are processed in chunks of whole tile rows whose transformed
/// input and output fit `ConvolutionOptions.winogradChunkBudget` floats.
public enum Winograd {
    static let points = 36     // (4 + 3 - 1)²

    /// out = conv2d(x, weight, stride 1, the given per-side zero padding) + bias,
    /// for x (N, Cin, H, W) and weight (Cout, Cin, 3, 3).
    public static func conv3x3(_ x: Tensor, weight: Tensor, bias: Tensor?,
                               padTop: Int, padBottom: Int, padLeft: Int, padRight: Int) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3
                     && weight.shape[1] == x.shape[1], "winograd: input \(x.shape), weight \(weight.shape)")
        let u = transformWeights(weight)
        return conv3x3(x, transformedWeight: u, bias: bias,
                       padTop: padTop, padBottom: padBottom, padLeft: padLeft, padRight: padRight)
    }

    /// The weight transform G g Gᵀ of every (out, in) channel pair, as (36, Cout, Cin),
    /// computed in double precision.
    public static func transformWeights(_ weight: Tensor) -> Tensor {
        let cout = weight.shape[0], cin = weight.shape[1]
        let u = Tensor(uninitialized: [points, cout, cin])
        let src = weight.data, dst = u.data
        let plane = cout * cin
        let block = 64      // pairs per block: the 36 outputs are written as contiguous runs
        parallelFor((plane + block - 1) / block, grain: 16) { s, e in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: 24) { dbuf in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: points * block) { fbuf in
                    let gg = dbuf.baseAddress!, t = gg + 18, staged = fbuf.baseAddress!
                    for blk in s..<e {
                        let first = blk * block, count = min(block, plane - first)
                        for j in 0..<count {
                            let g = src + (first + j) * 9
                            // Rows of G·g (6×3), one column of g at a time.
                            for col in 0..<3 {
                                gTimes(Double(g[col]), Double(g[3 + col]), Double(g[6 + col]), into: t)
                                for r in 0..<6 { gg[r * 3 + col] = t[r] }
                            }
                            // (G·g)·Gᵀ, row by row.
                            for r in 0..<6 {
                                gTimes(gg[r * 3], gg[r * 3 + 1], gg[r * 3 + 2], into: t)
                                for c in 0..<6 { staged[(r * 6 + c) * block + j] = Float(t[c]) }
                            }
                        }
                        for p in 0..<points { (dst + p * plane + first).update(from: staged + p * block, count: count) }
                    }
                }
            }
        }
        return u
    }

    /// G·(g0, g1, g2) with G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1].
    @inline(__always)
    static func gTimes(_ g0: Double, _ g1: Double, _ g2: Double, into t: UnsafeMutablePointer<Double>) {
        // Multiplications by the reciprocals (divisions would dominate the transform's cost).
        let sixth = 1.0 / 6, twelfth = 1.0 / 12, twentyFourth = 1.0 / 24
        t[0] = g0 * 0.25
        t[1] = -(g0 + g1 + g2) * sixth
        t[2] = -(g0 - g1 + g2) * sixth
        t[3] = g0 * twentyFourth + g1 * twelfth + g2 * sixth
        t[4] = g0 * twentyFourth - g1 * twelfth + g2 * sixth
        t[5] = g2
    }

    /// The convolution with weights already transformed by `transformWeights`.
    public static func conv3x3(_ x: Tensor, transformedWeight u: Tensor, bias: Tensor?,
                               padTop: Int, padBottom: Int, padLeft: Int, padRight: Int) -> Tensor {
        let n = x.shape[0], cin = x.shape[1], h = x.shape[2], w = x.shape[3]
        let cout = u.shape[1]
        precondition(u.rank == 3 && u.shape[0] == points && u.shape[2] == cin,
                     "winograd: transformed weight \(u.shape) does not fit input \(x.shape)")
        let oh = h + padTop + padBottom - 2, ow = w + padLeft + padRight - 2
        precondition(oh > 0 && ow > 0, "winograd: input \(x.shape) too small for a 3x3 kernel")
        let out = Tensor(uninitialized: [n, cout, oh, ow])
        let g = Geometry(cin: cin, cout: cout, n: n, h: h, w: w, oh: oh, ow: ow, padTop: padTop, padLeft: padLeft,
                         input: PlaneLayout(imageStride: cin * h * w, channelStride: h * w),
                         output: PlaneLayout(imageStride: cout * oh * ow, channelStride: oh * ow), relu: false)
        convolve(x.data, g, transformedWeight: u.data, bias: bias?.data, into: out.data,
                 budget: ConvolutionOptions.current.winogradChunkBudget, spanImages: false)
        return out
    }

    /// The same convolution on the channel-major batch layout (C, N, H, W) of `PlanarConv`:
    /// x (cin, n, h, w) contiguous; output channel o of image b is the oh×ow plane at
    /// `out + o·ldOut + b·oh·ow`; optionally followed by ReLU. Small maps put several images'
    /// tiles in one GEMM (an 8x8 map has only four 4x4 tiles); `budget` bounds a chunk's
    /// transformed input and output, in floats.
    public static func conv3x3Planar(x: UnsafePointer<Float>, cin: Int, n: Int, h: Int, w: Int,
                                     transformedWeight u: Tensor, bias: UnsafePointer<Float>?, relu: Bool,
                                     padTop: Int, padBottom: Int, padLeft: Int, padRight: Int,
                                     out: UnsafeMutablePointer<Float>, ldOut: Int, budget: Int) {
        precondition(u.rank == 3 && u.shape[0] == points && u.shape[2] == cin,
                     "winograd: transformed weight \(u.shape) does not fit \(cin) input channels")
        let oh = h + padTop + padBottom - 2, ow = w + padLeft + padRight - 2
        precondition(oh > 0 && ow > 0, "winograd: input \(h)x\(w) too small for a 3x3 kernel")
        let g = Geometry(cin: cin, cout: u.shape[1], n: n, h: h, w: w, oh: oh, ow: ow, padTop: padTop, padLeft: padLeft,
                         input: PlaneLayout(imageStride: h * w, channelStride: n * h * w),
                         output: PlaneLayout(imageStride: oh * ow, channelStride: ldOut), relu: relu)
        convolve(x, g, transformedWeight: u.data, bias: bias, into: out, budget: budget, spanImages: true)
    }

    /// Where the H×W plane of (image b, channel c) starts: b·imageStride + c·channelStride.
    struct PlaneLayout {
        var imageStride: Int, channelStride: Int
    }

    struct Geometry {
        var cin: Int, cout: Int, n: Int, h: Int, w: Int, oh: Int, ow: Int
        var padTop: Int, padLeft: Int
        var input: PlaneLayout, output: PlaneLayout
        var relu: Bool
        var tilesH: Int { (oh + 3) / 4 }
        var tilesW: Int { (ow + 3) / 4 }
    }

    /// A run of tile rows, numbered across the batch (row R is tile row R mod tilesH of image R / tilesH).
    struct Chunk { var firstRow: Int, rows: Int }

    /// Splits the batch's tile rows into chunks whose transformed input and output fit `budget`
    /// floats: whole images per chunk when `spanImages` and an image fits, else runs of tile rows
    /// within one image. The split must not depend on the thread count: OpenBLAS rounds a GEMM's
    /// columns differently with the matrix width, and an image's values must not depend on how
    /// many threads computed them.
    static func chunks(_ g: Geometry, budget: Int, spanImages: Bool) -> [Chunk] {
        let tilesH = g.tilesH
        let perRow = points * (g.cin + g.cout) * g.tilesW          // floats of V and M per tile row
        let fit = max(1, budget / max(perRow, 1))
        if spanImages && fit >= tilesH {
            let count = (g.n + fit / tilesH - 1) / (fit / tilesH)
            let perChunk = (g.n + count - 1) / count               // images, balanced
            return stride(from: 0, to: g.n, by: perChunk).map {
                Chunk(firstRow: $0 * tilesH, rows: (min(g.n, $0 + perChunk) - $0) * tilesH)
            }
        }
        let perImage = (tilesH + min(fit, tilesH) - 1) / min(fit, tilesH)
        let chunkRows = (tilesH + perImage - 1) / perImage
        var list: [Chunk] = []
        for b in 0..<g.n {
            for ty in stride(from: 0, to: tilesH, by: chunkRows) {
                list.append(Chunk(firstRow: b * tilesH + ty, rows: min(chunkRows, tilesH - ty)))
            }
        }
        return list
    }

    /// Transform, 36 GEMMs and inverse transform of every chunk. `u`: (36, cout, cin).
    static func convolve(_ x: UnsafePointer<Float>, _ g: Geometry, transformedWeight u: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                         budget: Int, spanImages: Bool) {
        let list = chunks(g, budget: budget, spanImages: spanImages)
        let tw = g.tilesW
        runChunks(list.count, points: points, cin: g.cin, cout: g.cout, transformedWeight: u,
                  columns: { c in (list[c].rows * tw, list[c].rows * tw + 8) },   // slack: the transforms' whole vectors
                  input: { c, v, ld, parallel in inputTransform(x, g, list[c], stride: ld, into: v, parallel: parallel) },
                  output: { c, m, ld, parallel in
                      outputTransform(m, g, list[c], stride: ld, bias: bias, into: out, parallel: parallel) })
    }

    /// The driver shared by the Winograd convolutions: for each of `count` chunks, `input`
    /// writes the transformed input V (points × cin rows of `ld` floats), then M[p] = U[p]·V[p]
    /// for every point p (U: points × cout × cin; `columns(c).n` columns), then `output` reads M
    /// (points × cout rows of `ld` floats). With `taps` > 1, U holds `taps` matrices per point
    /// (points·taps × cout × cin) and M[p] = Σ_t U[p, t]·V[p] shifted by t columns.
    /// With enough chunks each thread runs whole chunks
    /// with its own buffers; otherwise the threads share each step of one chunk at a time.
    /// Either way each GEMM is a single-threaded BLAS call, so the values do not depend on the
    /// thread count.
    static func runChunks(_ count: Int, points: Int, cin: Int, cout: Int, transformedWeight u: UnsafePointer<Float>,
                          columns: (Int) -> (n: Int, ld: Int), taps: Int = 1,
                          input: (Int, UnsafeMutablePointer<Float>, Int, Bool) -> Void,
                          output: (Int, UnsafePointer<Float>, Int, Bool) -> Void) {
        let threads = Threads.count
        func run(_ chunk: Int, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, parallel: Bool) {
            let (n, ld) = columns(chunk)
            input(chunk, v, ld, parallel)
            let gemms = { (lo: Int, hi: Int) in
                for p in lo..<hi {
                    for t in 0..<taps {
                        BLAS.sgemm(m: cout, n: n, k: cin, a: u + (p * taps + t) * cout * cin, lda: cin,
                                   b: v + p * cin * ld + t, ldb: ld, beta: t == 0 ? 0 : 1, c: m + p * cout * ld, ldc: ld)
                    }
                }
            }
            if parallel { parallelFor(points, grain: 1, gemms) } else { gemms(0, points) }
            output(chunk, m, ld, parallel)
        }
        let maxLd = (0..<count).map { columns($0).ld }.max() ?? 0
        let vSize = points * cin * maxLd, mSize = points * cout * maxLd
        // Whole chunks per thread only when that balances: 3 chunks on 2 threads would leave
        // one thread idle for a third of the time.
        let perThread = threads > 1 && count >= threads && (count % threads == 0 || count >= 4 * threads)
        // Single-threaded BLAS calls from our own threads: one fork/join per chunk (or per
        // convolution), not one BLAS pool wake-up per GEMM.
        BLAS.withThreads(1) {
            if perThread {
                let v = Tensor(uninitialized: [threads, vSize]), m = Tensor(uninitialized: [threads, mSize])
                concurrentPerform(threads) { t in
                    var c = t
                    while c < count {
                        run(c, v: v.data + t * vSize, m: m.data + t * mSize, parallel: false)
                        c += threads
                    }
                }
            } else {
                let v = Tensor(uninitialized: [vSize]), m = Tensor(uninitialized: [mSize])
                for c in 0..<count { run(c, v: v.data, m: m.data, parallel: threads > 1) }
            }
        }
    }

    /// `parallelFor` when `parallel`, else the whole range on this thread.
    @inline(__always)
    static func maybeParallel(_ parallel: Bool, _ n: Int, _ body: (Int, Int) -> Void) {
        if parallel { parallelFor(n, grain: 1, body) } else if n > 0 { body(0, n) }
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Bᵀ·(a0…a5) for eight independent lanes.
    @inline(__always)
    static func bt(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>,
                   _ a4: SIMD8<Float>, _ a5: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        (4 * a0 - 5 * a2 + a4,
         -4 * (a1 + a2) + a3 + a4,
         4 * (a1 - a2) - a3 + a4,
         2 * (a3 - a1) - a2 + a4,
         2 * (a1 - a3) - a2 + a4,
         4 * a1 - 5 * a3 + a5)
    }

    /// Aᵀ·(a0…a5) for eight independent lanes.
    @inline(__always)
    static func at(_ a0: SIMD8<Float>, _ a1: SIMD8<Float>, _ a2: SIMD8<Float>, _ a3: SIMD8<Float>,
                   _ a4: SIMD8<Float>, _ a5: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let p12 = a1 + a2, m12 = a1 - a2, p34 = a3 + a4, m34 = a3 - a4
        return (a0 + p12 + p34, m12 + 2 * m34, p12 + 4 * p34, m12 + 8 * m34 + a5)
    }
}
