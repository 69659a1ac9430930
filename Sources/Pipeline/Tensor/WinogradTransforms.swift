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
                for c in s..<e {
                    for row in 0..<chunk.rows {
                        let b = (chunk.firstRow + row) / tilesH, ty = (chunk.firstRow + row) % tilesH
                        let plane = x + b * g.input.imageStride + c * g.input.channelStride
                        let y0 = ty * 4 - g.padTop
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
                        let tBase = row * tw
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

    /// out tile = Aᵀ m A + bias (then ReLU when `g.relu`), with Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1];
    /// tiles overhanging the output's bottom or right edge are clipped. Eight tiles at a time.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: Geometry, _ chunk: Chunk,
                                stride: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>,
                                parallel: Bool) {
        let tw = g.tilesW, tilesH = g.tilesH, relu = g.relu
        let twPad = (tw + 7) & ~7
        let planeStride = g.cout * stride
        maybeParallel(parallel, g.cout) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 * twPad + 4 * twPad * 4 + 8) { buf in
                let t = buf.baseAddress!                   // (Aᵀ·m)[r][k] for every tile: 4×6 rows of twPad
                let rowBuf = t + 24 * twPad                // 4 output rows of a tile row
                for o in s..<e {
                    let b = bias?[o] ?? 0
                    for row in 0..<chunk.rows {
                        let image = (chunk.firstRow + row) / tilesH, ty = (chunk.firstRow + row) % tilesH
                        let plane = out + image * g.output.imageStride + o * g.output.channelStride
                        let tBase = row * tw
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
                                var c0 = a.0 + b, c1 = a.1 + b, c2 = a.2 + b, c3 = a.3 + b
                                if relu {
                                    let zero = SIMD8<Float>.zero
                                    c0.replace(with: zero, where: c0 .< zero); c1.replace(with: zero, where: c1 .< zero)
                                    c2.replace(with: zero, where: c2 .< zero); c3.replace(with: zero, where: c3 .< zero)
                                }
                                let d = dst + tx * 4
                                for l in 0..<8 {
                                    d[4 * l] = c0[l]; d[4 * l + 1] = c1[l]; d[4 * l + 2] = c2[l]; d[4 * l + 3] = c3[l]
                                }
                                tx += 8
                            }
                            let y = ty * 4 + r
                            if y < g.oh { (plane + y * g.ow).update(from: dst, count: g.ow) }
                        }
                    }
                }
            }
        }
    }
}
