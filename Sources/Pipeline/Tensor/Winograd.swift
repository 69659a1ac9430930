import Foundation

/// 3x3, stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016):
/// each 4x4 output tile costs 36 multiplications per (input, output) channel pair instead of 144.
/// The 36 transform points become 36 independent GEMMs, U[p] (Cout×Cin) · V[p] (Cin×tiles),
/// done through BLAS. Interpolation points 0, ±1, ±2, ∞; in float32 the result differs from
/// the direct convolution by a few units of 1e-6 relative to the output's magnitude.
///
/// Memory is bounded: tiles are processed in chunks of whole tile rows whose transformed
/// input and output fit `Winograd.chunkBudget` floats.
public enum Winograd {
    /// Upper bound, in floats, of a chunk's transformed input plus transformed output.
    public static var chunkBudget = 6 << 20

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
        let tilesH = (oh + 3) / 4, tilesW = (ow + 3) / 4
        let geometry = Geometry(cin: cin, cout: cout, h: h, w: w, oh: oh, ow: ow,
                                padTop: padTop, padLeft: padLeft, tilesW: tilesW)
        let threads = Threads.count
        let perRow = points * (cin + cout) * tilesW          // floats of V and M per tile row
        // Chunks of whole tile rows within the budget, their count a multiple of the thread
        // count so that threads can each run whole chunks.
        let fit = max(1, min(tilesH, chunkBudget / max(threads, 1) / max(perRow, 1)))
        var perImage = (tilesH + fit - 1) / fit
        if threads > 1 { perImage = min(tilesH, (perImage + threads - 1) / threads * threads) }
        let chunkRows = (tilesH + perImage - 1) / perImage
        let chunksPerImage = (tilesH + chunkRows - 1) / chunkRows
        let chunks = n * chunksPerImage

        /// Transform, 36 GEMMs and inverse transform of one chunk, with the given buffers.
        func run(chunk: Int, v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>, parallel: Bool) {
            let b = chunk / chunksPerImage
            let ty0 = (chunk % chunksPerImage) * chunkRows
            let rows = min(chunkRows, tilesH - ty0)
            let tiles = rows * tilesW
            inputTransform(UnsafePointer(x.data + b * cin * h * w), geometry, tileRow: ty0, rows: rows,
                           stride: tiles, into: v, parallel: parallel)
            let gemms = { (lo: Int, hi: Int) in
                for p in lo..<hi {
                    BLAS.sgemm(m: cout, n: tiles, k: cin, a: u.data + p * cout * cin, lda: cin,
                               b: v + p * cin * tiles, ldb: tiles, beta: 0, c: m + p * cout * tiles, ldc: tiles)
                }
            }
            if parallel { parallelFor(points, grain: 1, gemms) } else { gemms(0, points) }
            outputTransform(m, geometry, tileRow: ty0, rows: rows, stride: tiles, bias: bias?.data,
                            into: out.data + b * cout * oh * ow, parallel: parallel)
        }

        let maxTiles = chunkRows * tilesW
        // Single-threaded BLAS calls from our own threads: one fork/join per chunk (or per
        // convolution), not one BLAS pool wake-up per GEMM.
        BLAS.withThreads(1) {
            if threads > 1 && chunks >= threads {
                // Each thread runs whole chunks with its own buffers.
                let v = Tensor(uninitialized: [threads, points * cin * maxTiles])
                let m = Tensor(uninitialized: [threads, points * cout * maxTiles])
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    var c = t
                    while c < chunks {
                        run(chunk: c, v: v.data + t * points * cin * maxTiles, m: m.data + t * points * cout * maxTiles,
                            parallel: false)
                        c += threads
                    }
                }
            } else {
                let v = Tensor(uninitialized: [points * cin * maxTiles])
                let m = Tensor(uninitialized: [points * cout * maxTiles])
                for c in 0..<chunks { run(chunk: c, v: v.data, m: m.data, parallel: threads > 1) }
            }
        }
        return out
    }

    /// `parallelFor` when `parallel`, else the whole range on this thread.
    @inline(__always)
    static func maybeParallel(_ parallel: Bool, _ n: Int, _ body: (Int, Int) -> Void) {
        if parallel { parallelFor(n, grain: 1, body) } else if n > 0 { body(0, n) }
    }

    struct Geometry {
        var cin: Int, cout: Int, h: Int, w: Int, oh: Int, ow: Int
        var padTop: Int, padLeft: Int, tilesW: Int
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

    /// V[p][c][t] = (Bᵀ d B)[p] for the 6×6 input patch d of every tile in the chunk, where
    /// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    /// Rows first, then columns; eight tiles at a time.
    static func inputTransform(_ x: UnsafePointer<Float>, _ g: Geometry, tileRow ty0: Int, rows: Int,
                               stride: Int, into v: UnsafeMutablePointer<Float>, parallel: Bool) {
        // Each padded input row is stored as 4 phase arrays (column 4e + φ at φ·span + e), so that
        // tile tx's six columns are phases 0–3 at e = tx and phases 0–1 at e = tx + 1: both passes
        // then read contiguous memory. Spans are rounded up to whole vectors.
        let span = (g.tilesW + 1 + 7) & ~7
        let rowSize = 4 * span
        let planeStride = g.cin * stride                   // between transform points in V
        let tw = g.tilesW
        maybeParallel(parallel, g.cin) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * rowSize + 8) { buf in
                let d = buf.baseAddress!                   // 6 padded input rows
                let r = d + 6 * rowSize                    // 6 rows of Bᵀ·d (+ 8 floats of slack)
                (r + 6 * rowSize).update(repeating: 0, count: 8)
                for c in s..<e {
                    let plane = x + c * g.h * g.w
                    for ty in 0..<rows {
                        let y0 = (ty0 + ty) * 4 - g.padTop
                        for i in 0..<6 {
                            let dst = d + i * rowSize
                            let y = y0 + i
                            if y < 0 || y >= g.h { dst.update(repeating: 0, count: rowSize); continue }
                            let src = plane + y * g.w
                            for phase in 0..<4 {
                                let q = dst + phase * span
                                // column 4e + phase holds x[y][4e + phase − padLeft], zero outside.
                                for e in 0..<span {
                                    let col = 4 * e + phase - g.padLeft
                                    q[e] = col >= 0 && col < g.w ? src[col] : 0
                                }
                            }
                        }
                        var j = 0
                        while j < rowSize {
                            let t = bt(load(d + j), load(d + rowSize + j), load(d + 2 * rowSize + j),
                                       load(d + 3 * rowSize + j), load(d + 4 * rowSize + j), load(d + 5 * rowSize + j))
                            store(t.0, r + j); store(t.1, r + rowSize + j); store(t.2, r + 2 * rowSize + j)
                            store(t.3, r + 3 * rowSize + j); store(t.4, r + 4 * rowSize + j); store(t.5, r + 5 * rowSize + j)
                            j += 8
                        }
                        let tBase = ty * tw
                        for i in 0..<6 {
                            let p0 = r + i * rowSize, p1 = p0 + span, p2 = p0 + 2 * span, p3 = p0 + 3 * span
                            let o = v + (i * 6) * planeStride + c * stride + tBase
                            var tx = 0
                            while tx + 8 <= tw {
                                let t = bt(load(p0 + tx), load(p1 + tx), load(p2 + tx), load(p3 + tx),
                                           load(p0 + tx + 1), load(p1 + tx + 1))
                                store(t.0, o + tx); store(t.1, o + planeStride + tx)
                                store(t.2, o + 2 * planeStride + tx); store(t.3, o + 3 * planeStride + tx)
                                store(t.4, o + 4 * planeStride + tx); store(t.5, o + 5 * planeStride + tx)
                                tx += 8
                            }
                            if tx < tw {
                                // The last, partial vector: lanes past the row are computed and dropped.
                                let t = bt(load(p0 + tx), load(p1 + tx), load(p2 + tx), load(p3 + tx),
                                           load(p0 + tx + 1), load(p1 + tx + 1))
                                for lane in 0..<(tw - tx) {
                                    o[tx + lane] = t.0[lane]; o[planeStride + tx + lane] = t.1[lane]
                                    o[2 * planeStride + tx + lane] = t.2[lane]; o[3 * planeStride + tx + lane] = t.3[lane]
                                    o[4 * planeStride + tx + lane] = t.4[lane]; o[5 * planeStride + tx + lane] = t.5[lane]
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out tile = Aᵀ m A + bias, with Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1];
    /// tiles overhanging the output's bottom or right edge are clipped. Eight tiles at a time.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: Geometry, tileRow ty0: Int, rows: Int,
                                stride: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                                parallel: Bool) {
        let tw = g.tilesW
        let twPad = (tw + 7) & ~7
        let planeStride = g.cout * stride
        maybeParallel(parallel, g.cout) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 * twPad + 4 * twPad * 4 + 8) { buf in
                let t = buf.baseAddress!                   // (Aᵀ·m)[r][k] for every tile: 4×6 rows of twPad
                let rowBuf = t + 24 * twPad                // 4 output rows of a tile row
                for o in s..<e {
                    let b = bias?[o] ?? 0
                    let plane = out + o * g.oh * g.ow
                    for ty in 0..<rows {
                        let tBase = ty * tw
                        for k in 0..<6 {
                            let m0 = m + k * planeStride + o * stride + tBase
                            let ps = 6 * planeStride
                            var tx = 0
                            while tx < tw {
                                let lanes = min(8, tw - tx)
                                func ld(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
                                    if lanes == 8 { return load(p) }
                                    var v = SIMD8<Float>.zero
                                    for l in 0..<lanes { v[l] = p[l] }
                                    return v
                                }
                                let a = at(ld(m0 + tx), ld(m0 + ps + tx), ld(m0 + 2 * ps + tx), ld(m0 + 3 * ps + tx),
                                           ld(m0 + 4 * ps + tx), ld(m0 + 5 * ps + tx))
                                store(a.0, t + k * twPad + tx); store(a.1, t + (6 + k) * twPad + tx)
                                store(a.2, t + (12 + k) * twPad + tx); store(a.3, t + (18 + k) * twPad + tx)
                                tx += 8
                            }
                        }
                        for r in 0..<4 {
                            let q = t + (r * 6) * twPad
                            let dst = rowBuf + r * twPad * 4
                            var tx = 0
                            while tx < tw {
                                let a = at(load(q + tx), load(q + twPad + tx), load(q + 2 * twPad + tx),
                                           load(q + 3 * twPad + tx), load(q + 4 * twPad + tx), load(q + 5 * twPad + tx))
                                let c0 = a.0 + b, c1 = a.1 + b, c2 = a.2 + b, c3 = a.3 + b
                                let d = dst + tx * 4
                                for l in 0..<8 {
                                    d[4 * l] = c0[l]; d[4 * l + 1] = c1[l]; d[4 * l + 2] = c2[l]; d[4 * l + 3] = c3[l]
                                }
                                tx += 8
                            }
                            let y = (ty0 + ty) * 4 + r
                            if y < g.oh { (plane + y * g.ow).update(from: dst, count: g.ow) }
                        }
                    }
                }
            }
        }
    }
}
