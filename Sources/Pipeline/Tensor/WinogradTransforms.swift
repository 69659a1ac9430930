import Foundation

// The input and output transforms of Winograd F(4x4, 3x3), SIMD over eight tiles.
extension Winograd {
    /// V[p][c][t] = (Bᵀ d B)[p] for the 6×6 input patch d of every tile in the chunk, where
    /// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    /// Rows first, then columns; eight tiles at a time.
    static func inputTransform(_ x: UnsafePointer<Float>, _ g: Geometry, _ chunk: Chunk,
                               stride: Int, into v: UnsafeMutablePointer<Float>, parallel: Bool) {
        // Each padded input row is stored as 4 phase arrays (column 4e + φ at φ·span + e), so that
        // tile tx's six columns are phases 0–3 at e = tx and phases 0–1 at e = tx + 1: both passes
        // then read contiguous memory. Spans are rounded up to whole vectors.
        let span = (g.tilesW + 1 + 7) & ~7
        let rowSize = 4 * span
        let planeStride = g.cin * stride                   // between transform points in V
        let tw = g.tilesW, tilesH = g.tilesH
        maybeParallel(parallel, g.cin) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * rowSize + 8) { buf in
                let d = buf.baseAddress!                   // 6 padded input rows
                let r = d + 6 * rowSize                    // 6 rows of Bᵀ·d (+ 8 floats of slack)
                (r + 6 * rowSize).update(repeating: 0, count: 8)
                // Per phase, the e whose column 4e + phase − padLeft lies in the row: eLo..<eHi.
                let eRange = (0..<4).map { phase -> (Int, Int) in
                    let lo = min(span, max(0, (g.padLeft - phase + 3) / 4))
                    return (lo, min(span, max(lo, (g.w + g.padLeft - phase + 3) / 4)))
                }
                for c in s..<e {
                    for row in 0..<chunk.rows {
                        let b = (chunk.firstRow + row) / tilesH, ty = (chunk.firstRow + row) % tilesH
                        let plane = x + b * g.input.imageStride + c * g.input.channelStride
                        let y0 = ty * 4 - g.padTop
                        // Consecutive tile rows of one image share two input rows: keep them.
                        var first = 0
                        if row > 0 && ty > 0 {
                            d.update(from: d + 4 * rowSize, count: 2 * rowSize)
                            first = 2
                        }
                        for i in first..<6 {
                            let dst = d + i * rowSize
                            let y = y0 + i
                            if y < 0 || y >= g.h { dst.update(repeating: 0, count: rowSize); continue }
                            let src = plane + y * g.w
                            for phase in 0..<4 {
                                // column 4e + phase holds x[y][4e + phase − padLeft], zero outside.
                                let q = dst + phase * span, (lo, hi) = eRange[phase]
                                let from = src + phase - g.padLeft
                                q.update(repeating: 0, count: lo)
                                for e in lo..<hi { q[e] = from[4 * e] }
                                (q + hi).update(repeating: 0, count: span - hi)
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
                        let tBase = row * tw
                        for i in 0..<6 {
                            let p0 = r + i * rowSize, p1 = p0 + span, p2 = p0 + 2 * span, p3 = p0 + 3 * span
                            let o = v + (i * 6) * planeStride + c * stride + tBase
                            var tx = 0
                            while tx < tw {
                                // A partial last vector writes past the row: into the next tile row's
                                // columns (written after this one) or the rows' slack (`stride` > tiles).
                                let t = bt(load(p0 + tx), load(p1 + tx), load(p2 + tx), load(p3 + tx),
                                           load(p0 + tx + 1), load(p1 + tx + 1))
                                store(t.0, o + tx); store(t.1, o + planeStride + tx)
                                store(t.2, o + 2 * planeStride + tx); store(t.3, o + 3 * planeStride + tx)
                                store(t.4, o + 4 * planeStride + tx); store(t.5, o + 5 * planeStride + tx)
                                tx += 8
                            }
                        }
                    }
                }
            }
        }
    }

    /// out tile = Aᵀ m A + bias (then ReLU when `g.relu`), with
    /// Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]; tiles overhanging the
    /// output's bottom or right edge are clipped. Both passes run over all the chunk's tiles,
    /// eight at a time (M's rows have at least 7 floats of slack after `tiles`), then each
    /// tile's 4×4 values are written to their rows.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: Geometry, _ chunk: Chunk,
                                stride: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                                parallel: Bool) {
        let tw = g.tilesW, tilesH = g.tilesH, relu = g.relu
        let tiles = chunk.rows * tw
        let tp = (tiles + 7) & ~7
        let planeStride = g.cout * stride, ps = 6 * planeStride
        let fullTiles = g.ow / 4, lastColumns = g.ow % 4
        maybeParallel(parallel, g.cout) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 40 * tp) { buf in
                let t1 = buf.baseAddress!                  // (Aᵀ·m)[r][k] of every tile: 24 rows of tp
                let s2 = t1 + 24 * tp                      // output (r, c) of every tile: 16 rows of tp
                for o in s..<e {
                    let b = bias?[o] ?? 0
                    for k in 0..<6 {
                        let src = m + k * planeStride + o * stride
                        var t = 0
                        while t < tiles {
                            let a = at(load(src + t), load(src + ps + t), load(src + 2 * ps + t), load(src + 3 * ps + t),
                                       load(src + 4 * ps + t), load(src + 5 * ps + t))
                            store(a.0, t1 + k * tp + t); store(a.1, t1 + (6 + k) * tp + t)
                            store(a.2, t1 + (12 + k) * tp + t); store(a.3, t1 + (18 + k) * tp + t)
                            t += 8
                        }
                    }
                    for r in 0..<4 {
                        let q = t1 + r * 6 * tp, d = s2 + r * 4 * tp
                        var t = 0
                        while t < tiles {
                            let a = at(load(q + t), load(q + tp + t), load(q + 2 * tp + t),
                                       load(q + 3 * tp + t), load(q + 4 * tp + t), load(q + 5 * tp + t))
                            var c0 = a.0 + b, c1 = a.1 + b, c2 = a.2 + b, c3 = a.3 + b
                            if relu {
                                let zero = SIMD8<Float>()
                                c0.replace(with: zero, where: c0 .< zero); c1.replace(with: zero, where: c1 .< zero)
                                c2.replace(with: zero, where: c2 .< zero); c3.replace(with: zero, where: c3 .< zero)
                            }
                            store(c0, d + t); store(c1, d + tp + t); store(c2, d + 2 * tp + t); store(c3, d + 3 * tp + t)
                            t += 8
                        }
                    }
                    for row in 0..<chunk.rows {
                        let image = (chunk.firstRow + row) / tilesH, ty = (chunk.firstRow + row) % tilesH
                        let plane = out + image * g.output.imageStride + o * g.output.channelStride
                        for r in 0..<min(4, g.oh - ty * 4) {
                            let dst = plane + (ty * 4 + r) * g.ow
                            let v0 = s2 + r * 4 * tp + row * tw, v1 = v0 + tp, v2 = v0 + 2 * tp, v3 = v0 + 3 * tp
                            for tx in 0..<fullTiles {
                                dst[4 * tx] = v0[tx]; dst[4 * tx + 1] = v1[tx]; dst[4 * tx + 2] = v2[tx]; dst[4 * tx + 3] = v3[tx]
                            }
                            for c in 0..<lastColumns { dst[4 * fullTiles + c] = v0[c * tp + fullTiles] }
                        }
                    }
                }
            }
        }
    }
}
