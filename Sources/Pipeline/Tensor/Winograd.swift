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
        parallelFor(plane, grain: 256) { s, e in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: 18 + 6) { buf in
                let gg = buf.baseAddress!, t = gg + 18
                for oc in s..<e {
                    let g = src + oc * 9
                    // Rows of G·g (6×3), one column of g at a time.
                    for col in 0..<3 {
                        gTimes(Double(g[col]), Double(g[3 + col]), Double(g[6 + col]), into: t)
                        for r in 0..<6 { gg[r * 3 + col] = t[r] }
                    }
                    // (G·g)·Gᵀ, row by row.
                    for r in 0..<6 {
                        gTimes(gg[r * 3], gg[r * 3 + 1], gg[r * 3 + 2], into: t)
                        for c in 0..<6 { dst[(r * 6 + c) * plane + oc] = Float(t[c]) }
                    }
                }
            }
        }
        return u
    }

    /// G·(g0, g1, g2) with G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1].
    @inline(__always)
    static func gTimes(_ g0: Double, _ g1: Double, _ g2: Double, into t: UnsafeMutablePointer<Double>) {
        t[0] = g0 / 4
        t[1] = -(g0 + g1 + g2) / 6
        t[2] = -(g0 - g1 + g2) / 6
        t[3] = g0 / 24 + g1 / 12 + g2 / 6
        t[4] = g0 / 24 - g1 / 12 + g2 / 6
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
        let perRow = points * (cin + cout) * tilesW
        let chunkRows = max(1, min(tilesH, chunkBudget / max(perRow, 1)))
        let maxTiles = chunkRows * tilesW
        let v = Tensor(uninitialized: [points, cin, maxTiles])
        let m = Tensor(uninitialized: [points, cout, maxTiles])
        let geometry = Geometry(cin: cin, cout: cout, h: h, w: w, oh: oh, ow: ow,
                                padTop: padTop, padLeft: padLeft, tilesW: tilesW)
        for b in 0..<n {
            let xin = UnsafePointer(x.data + b * cin * h * w)
            let o = out.data + b * cout * oh * ow
            var ty0 = 0
            while ty0 < tilesH {
                let rows = min(chunkRows, tilesH - ty0)
                let tiles = rows * tilesW
                inputTransform(xin, geometry, tileRow: ty0, rows: rows, stride: tiles, into: v.data)
                for p in 0..<points {
                    BLAS.sgemm(m: cout, n: tiles, k: cin, a: u.data + p * cout * cin, lda: cin,
                               b: v.data + p * cin * tiles, ldb: tiles,
                               beta: 0, c: m.data + p * cout * tiles, ldc: tiles)
                }
                outputTransform(m.data, geometry, tileRow: ty0, rows: rows, stride: tiles,
                                bias: bias?.data, into: o)
                ty0 += rows
            }
        }
        return out
    }

    struct Geometry {
        var cin: Int, cout: Int, h: Int, w: Int, oh: Int, ow: Int
        var padTop: Int, padLeft: Int, tilesW: Int
    }

    /// V[p][c][t] = (Bᵀ d B)[p] for the 6×6 input patch d of every tile in the chunk, where
    /// Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    /// Rows first (vectorised along x), then columns per tile.
    static func inputTransform(_ x: UnsafePointer<Float>, _ g: Geometry, tileRow ty0: Int, rows: Int,
                               stride: Int, into v: UnsafeMutablePointer<Float>) {
        let width = g.tilesW * 4 + 2                       // padded columns covered by a tile row
        let planeStride = g.cin * stride                   // between transform points in V
        parallelFor(g.cin, grain: 1) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 12 * width) { buf in
                let d = buf.baseAddress!                   // 6 padded input rows
                let r = d + 6 * width                      // 6 rows of Bᵀ·d
                for c in s..<e {
                    let plane = x + c * g.h * g.w
                    for ty in 0..<rows {
                        let y0 = (ty0 + ty) * 4 - g.padTop
                        for i in 0..<6 {
                            let dst = d + i * width
                            let y = y0 + i
                            if y < 0 || y >= g.h { dst.update(repeating: 0, count: width); continue }
                            let src = plane + y * g.w
                            // dst[j] = x[y][j − padLeft], zero outside the image.
                            let lo = min(width, max(0, g.padLeft)), hi = min(width, g.w + g.padLeft)
                            if lo > 0 { dst.update(repeating: 0, count: lo) }
                            if hi > lo { (dst + lo).update(from: src + (lo - g.padLeft), count: hi - lo) }
                            if width > max(hi, lo) { (dst + max(hi, lo)).update(repeating: 0, count: width - max(hi, lo)) }
                        }
                        let d0 = d, d1 = d + width, d2 = d + 2 * width, d3 = d + 3 * width, d4 = d + 4 * width, d5 = d + 5 * width
                        let r0 = r, r1 = r + width, r2 = r + 2 * width, r3 = r + 3 * width, r4 = r + 4 * width, r5 = r + 5 * width
                        for j in 0..<width {
                            let a0 = d0[j], a1 = d1[j], a2 = d2[j], a3 = d3[j], a4 = d4[j], a5 = d5[j]
                            r0[j] = 4 * a0 - 5 * a2 + a4
                            r1[j] = -4 * (a1 + a2) + a3 + a4
                            r2[j] = 4 * (a1 - a2) - a3 + a4
                            r3[j] = 2 * (a3 - a1) - a2 + a4
                            r4[j] = 2 * (a1 - a3) - a2 + a4
                            r5[j] = 4 * a1 - 5 * a3 + a5
                        }
                        let tBase = ty * g.tilesW
                        for i in 0..<6 {
                            let row = r + i * width
                            let out = v + (i * 6) * planeStride + c * stride + tBase
                            for tx in 0..<g.tilesW {
                                let q = row + tx * 4
                                let a0 = q[0], a1 = q[1], a2 = q[2], a3 = q[3], a4 = q[4], a5 = q[5]
                                out[tx] = 4 * a0 - 5 * a2 + a4
                                out[planeStride + tx] = -4 * (a1 + a2) + a3 + a4
                                out[2 * planeStride + tx] = 4 * (a1 - a2) - a3 + a4
                                out[3 * planeStride + tx] = 2 * (a3 - a1) - a2 + a4
                                out[4 * planeStride + tx] = 2 * (a1 - a3) - a2 + a4
                                out[5 * planeStride + tx] = 4 * a1 - 5 * a3 + a5
                            }
                        }
                    }
                }
            }
        }
    }

    /// out tile = Aᵀ m A + bias, with Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1];
    /// tiles overhanging the output's bottom or right edge are clipped.
    static func outputTransform(_ m: UnsafePointer<Float>, _ g: Geometry, tileRow ty0: Int, rows: Int,
                                stride: Int, bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let tw = g.tilesW
        let planeStride = g.cout * stride
        parallelFor(g.cout, grain: 1) { s, e in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 24 * tw + 4 * (tw * 4)) { buf in
                let t = buf.baseAddress!                   // (Aᵀ·m)[r][k] for every tile: 4×6 rows of tw
                let rowBuf = t + 24 * tw                   // 4 output rows of a tile row
                for o in s..<e {
                    let b = bias?[o] ?? 0
                    let plane = out + o * g.oh * g.ow
                    for ty in 0..<rows {
                        let tBase = ty * tw
                        for k in 0..<6 {
                            let m0 = m + (0 * 6 + k) * planeStride + o * stride + tBase
                            let m1 = m0 + 6 * planeStride, m2 = m0 + 12 * planeStride
                            let m3 = m0 + 18 * planeStride, m4 = m0 + 24 * planeStride, m5 = m0 + 30 * planeStride
                            let t0 = t + (0 * 6 + k) * tw, t1 = t + (1 * 6 + k) * tw
                            let t2 = t + (2 * 6 + k) * tw, t3 = t + (3 * 6 + k) * tw
                            for tx in 0..<tw {
                                let a1 = m1[tx], a2 = m2[tx], a3 = m3[tx], a4 = m4[tx]
                                let p12 = a1 + a2, m12 = a1 - a2, p34 = a3 + a4, m34 = a3 - a4
                                t0[tx] = m0[tx] + p12 + p34
                                t1[tx] = m12 + 2 * m34
                                t2[tx] = p12 + 4 * p34
                                t3[tx] = m12 + 8 * m34 + m5[tx]
                            }
                        }
                        for r in 0..<4 {
                            let q0 = t + (r * 6) * tw, q1 = q0 + tw, q2 = q0 + 2 * tw
                            let q3 = q0 + 3 * tw, q4 = q0 + 4 * tw, q5 = q0 + 5 * tw
                            let dst = rowBuf + r * tw * 4
                            for tx in 0..<tw {
                                let a1 = q1[tx], a2 = q2[tx], a3 = q3[tx], a4 = q4[tx]
                                let p12 = a1 + a2, m12 = a1 - a2, p34 = a3 + a4, m34 = a3 - a4
                                dst[tx * 4] = q0[tx] + p12 + p34 + b
                                dst[tx * 4 + 1] = m12 + 2 * m34 + b
                                dst[tx * 4 + 2] = p12 + 4 * p34 + b
                                dst[tx * 4 + 3] = m12 + 8 * m34 + q5[tx] + b
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
