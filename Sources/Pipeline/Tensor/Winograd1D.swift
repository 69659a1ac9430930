import Foundation

/// One-dimensional Winograd minimal filtering F(m, r) (Toom-Cook; Lavin & Gray 2016) for the
/// 1×r and r×1 convolutions (stride 1) of the channel-major batch layout (C, N, H, W) of
/// `PlanarConv`: every run of m outputs along the kernel's axis costs α = m + r − 1
/// multiplications per (input, output) channel pair instead of m·r. The α transform points
/// become α GEMMs, U[j] (Cout×Cin) · V[j] (Cin×tiles), run by `Winograd.runChunks`.
///
/// With finite interpolation points p₀…p_{α−2} and ∞, y = Aᵀ[(G g) ⊙ (Bᵀ d)] where
/// A (α×m) and G (α×r) evaluate a polynomial at the points (A[j][i] = p_jⁱ, the ∞ row picks
/// the leading coefficient) and Bᵀ = V⁻ᵀ for the α×α Vandermonde matrix V: the transpose of
/// the linear convolution evaluate–multiply–interpolate. The matrices are built in double
/// precision; each row of Bᵀ is scaled so that its largest entry is ±1 and the scale moves
/// into G (exact in the weight transform, which runs in double precision).
public struct Winograd1D {
    /// The axis a kernel slides along: height for r×1 kernels, width for 1×r.
    public enum Axis { case height, width }

    public let outputs: Int, kernel: Int
    public var alpha: Int { outputs + kernel - 1 }
    /// Bᵀ (α×α), Aᵀ (m×α), row-major, as lists of the non-zero (column, coefficient) per row.
    let inputRows: [[(Int, Float)]], outputRows: [[(Int, Float)]]
    /// G (α×r), row-major.
    let filter: [Double]

    /// F(m, r) with the given α − 1 distinct finite points (and ∞).
    public init(outputs m: Int, kernel r: Int, points: [Double]) {
        let alpha = m + r - 1
        precondition(m >= 1 && r >= 1 && points.count == alpha - 1 && Set(points).count == points.count,
                     "winograd1d: F(\(m), \(r)) needs \(alpha - 1) distinct finite points")
        outputs = m; kernel = r
        func power(_ p: Double, _ e: Int) -> Double { (0..<e).reduce(1) { acc, _ in acc * p } }
        // Vandermonde-type rows: row j is (p_j⁰, …, p_j^(count−1)); the ∞ row is (0, …, 0, 1).
        func evaluation(_ count: Int) -> [[Double]] {
            points.map { p in (0..<count).map { power(p, $0) } } + [(0..<count).map { $0 == count - 1 ? 1 : 0 }]
        }
        let vInverse = Winograd1D.inverse(evaluation(alpha))
        var bt = (0..<alpha).map { j in (0..<alpha).map { l in vInverse[l][j] } }   // V⁻ᵀ
        var g = evaluation(r)
        for j in 0..<alpha {
            let scale = bt[j].map(abs).max() ?? 1
            bt[j] = bt[j].map { $0 / scale }
            g[j] = g[j].map { $0 * scale }
        }
        let a = evaluation(m)
        func sparse(_ rows: [[Double]]) -> [[(Int, Float)]] {
            rows.map { row in row.enumerated().filter { $0.element != 0 }.map { ($0.offset, Float($0.element)) } }
        }
        inputRows = sparse(bt)
        outputRows = sparse((0..<m).map { i in (0..<alpha).map { j in a[j][i] } })
        filter = g.flatMap { $0 }
    }

    /// The variants `PlanarConv` uses: F(4, 7) for Inception's 1×7 / 7×1 on 17-wide maps
    /// (10 points, 2.8× fewer multiplications), F(4, 5) for the rows of its 5×5 (8 points),
    /// F(4, 3) for the 1×3 / 3×1 on 8-wide maps.
    public static func preferred(kernel r: Int) -> Winograd1D? {
        switch r {
        case 3: return Winograd1D(outputs: 4, kernel: 3, points: [0, 1, -1, 2, -2])
        case 5: return Winograd1D(outputs: 4, kernel: 5, points: [0, 1, -1, 2, -2, 0.5, -0.5])
        // Points chosen for float32 accuracy among sets of 0, ±1, ±2, ±½ and two more: with
        // −¾ and 5/4 the error of a 160-channel sum is ~4e-6 of its range, with ±3 ~1.3e-5.
        case 7: return Winograd1D(outputs: 4, kernel: 7, points: [0, 1, -1, 2, -2, 0.5, -0.5, -0.75, 1.25])
        default: return nil
        }
    }

    /// Inverse of a small matrix by Gauss–Jordan elimination with partial pivoting.
    static func inverse(_ matrix: [[Double]]) -> [[Double]] {
        let n = matrix.count
        var a = matrix, inv = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
        for col in 0..<n {
            let pivot = (col..<n).max { abs(a[$0][col]) < abs(a[$1][col]) } ?? col
            a.swapAt(col, pivot); inv.swapAt(col, pivot)
            let d = a[col][col]
            precondition(d != 0, "winograd1d: singular interpolation matrix")
            for k in 0..<n { a[col][k] /= d; inv[col][k] /= d }
            for row in 0..<n where row != col && a[row][col] != 0 {
                let f = a[row][col]
                for k in 0..<n { a[row][k] -= f * a[col][k]; inv[row][k] -= f * inv[col][k] }
            }
        }
        return inv
    }

    /// U[j][t][o][c] = Σ_k G[j][k] · w[o][c][t][k] for weights (cout, cin, taps, r): `taps`
    /// kernel lines across the axis (1 for 1×r and r×1 kernels; 5 for a 5×5 along the width),
    /// as (α·taps, cout, cin), in double precision.
    public func transformWeights(_ weight: UnsafePointer<Float>, cout: Int, cin: Int, taps: Int = 1) -> Tensor {
        let u = Tensor(uninitialized: [alpha * taps, cout, cin])
        let (r, alpha, plane) = (kernel, alpha, cout * cin)
        for pair in 0..<plane {
            for t in 0..<taps {
                let w = weight + (pair * taps + t) * r
                for j in 0..<alpha {
                    var acc = 0.0
                    for k in 0..<r { acc += filter[j * r + k] * Double(w[k]) }
                    u.data[(j * taps + t) * plane + pair] = Float(acc)
                }
            }
        }
        return u
    }

    /// out rows `0..<cout` (row stride `ldOut`, N·OH·OW columns each) = conv(x) + bias, then
    /// ReLU when `relu`, for x (cin, n, h, w) and the kernel sliding along `axis` with zero
    /// padding `padBefore`/`padAfter` on that axis. A kernel `taps` lines deep across the axis
    /// (padding `acrossPad` on that side) is the sum of `taps` 1-D convolutions of shifted
    /// lines: they share one input transform, and each point's GEMMs accumulate the taps.
    public func convPlanar(x: UnsafePointer<Float>, cin: Int, n: Int, h: Int, w: Int, axis: Axis,
                           padBefore: Int, padAfter: Int, taps: Int = 1, acrossPad: (Int, Int) = (0, 0),
                           transformedWeight u: Tensor, bias: UnsafePointer<Float>?, relu: Bool,
                           out: UnsafeMutablePointer<Float>, ldOut: Int, budget: Int) {
        let cout = u.shape[1]
        precondition(u.rank == 3 && u.shape[0] == alpha * taps && u.shape[2] == cin,
                     "winograd1d: transformed weight \(u.shape) does not fit \(cin) input channels")
        let along = axis == .height ? h : w
        // Lines are stored with the across padding: `across` values, the first `outAcross` valid outputs.
        let across = (axis == .height ? w : h) + acrossPad.0 + acrossPad.1, outAcross = across - taps + 1
        let outAlong = along + padBefore + padAfter - kernel + 1
        precondition(outAlong > 0 && outAcross > 0, "winograd1d: input \(h)x\(w) too small for the kernel")
        let (oh, ow) = axis == .height ? (outAlong, outAcross) : (outAcross, outAlong)
        let m = outputs, tiles = (outAlong + m - 1) / m
        // The staged input: phase φ holds line m·e + φ − padBefore (all `across` values) at
        // e·across, so tile t's input value l is at phase l mod m, offset (t + l/m)·across:
        // contiguous over the image's tiles (t, k) for every l. 16 floats of slack per phase.
        let lines = tiles + (alpha - 1) / m
        let phaseSize = lines * across + 16
        let columnsPerImage = tiles * across
        let perImage = alpha * (cin + cout) * columnsPerImage
        let fit = max(1, budget / max(perImage, 1))
        let count = (n + fit - 1) / fit
        let imagesPerChunk = (n + count - 1) / count
        // Input plane (b, c) and output plane (b, o); a line is a row (height) or a column (width).
        let (inLine, inStep) = axis == .height ? (w, 1) : (1, w)
        let (outLine, outStep) = axis == .height ? (ow, 1) : (1, ow)
        let inTerms = Winograd1D.terms(inputRows) { l in (l % m) * phaseSize + (l / m) * across }

        Winograd.runChunks(count, points: alpha, cin: cin, cout: cout, transformedWeight: u.data,
                           columns: { c in
                               let images = min(n, (c + 1) * imagesPerChunk) - c * imagesPerChunk
                               return (images * columnsPerImage, images * columnsPerImage + 16 + taps)
                           }, taps: taps,
                           input: { c, v, ld, parallel in
            let b0 = c * imagesPerChunk, b1 = min(n, b0 + imagesPerChunk)
            Winograd.maybeParallel(parallel, cin) { s, e in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: m * phaseSize) { buf in
                    let stage = buf.baseAddress!
                    for ch in s..<e {
                        for b in b0..<b1 {
                            let plane = x + (ch * n + b) * h * w
                            stage.update(repeating: 0, count: m * phaseSize)
                            for a in 0..<along {
                                let q = a + padBefore
                                let dst = stage + (q % m) * phaseSize + (q / m) * across + acrossPad.0
                                let src = plane + a * inLine
                                if inStep == 1 { dst.update(from: src, count: across - acrossPad.0 - acrossPad.1) } else {
                                    for k in 0..<(across - acrossPad.0 - acrossPad.1) { dst[k] = src[k * inStep] }
                                }
                            }
                            Winograd1D.combine(inTerms, rows: alpha, stage, count: columnsPerImage,
                                               into: v + ch * ld + (b - b0) * columnsPerImage, rowStride: cin * ld,
                                               bias: 0, relu: false)
                        }
                    }
                }
            }
        }, output: { c, mm, ld, parallel in
            let b0 = c * imagesPerChunk, b1 = min(n, b0 + imagesPerChunk)
            let span = columnsPerImage + 16
            let outTerms = Winograd1D.terms(outputRows) { j in j * cout * ld }
            Winograd.maybeParallel(parallel, cout) { s, e in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: m * span) { buf in
                    let stage = buf.baseAddress!
                    for o in s..<e {
                        for b in b0..<b1 {
                            Winograd1D.combine(outTerms, rows: m, mm + o * ld + (b - b0) * columnsPerImage,
                                               count: columnsPerImage, into: stage, rowStride: span,
                                               bias: bias?[o] ?? 0, relu: relu)
                            let plane = out + o * ldOut + b * oh * ow
                            for a in 0..<outAlong {
                                let from = stage + (a % m) * span + (a / m) * across, dst = plane + a * outLine
                                if outStep == 1 { dst.update(from: from, count: outAcross) } else {
                                    for k in 0..<outAcross { dst[k * outStep] = from[k] }
                                }
                            }
                        }
                    }
                }
            }
        })
    }

    /// Sparse matrix rows with their source offsets resolved: row r's terms are
    /// `start[r]..<start[r + 1]` of (`offset`, `coef`).
    struct Terms {
        var start: [Int], offset: [Int], coef: [Float]
    }

    static func terms(_ rows: [[(Int, Float)]], offset: (Int) -> Int) -> Terms {
        var t = Terms(start: [0], offset: [], coef: [])
        for row in rows {
            for (col, c) in row { t.offset.append(offset(col)); t.coef.append(c) }
            t.start.append(t.offset.count)
        }
        return t
    }

    /// dst[r·rowStride + t] = act(bias + Σ coef · src[offset + t]) over the terms of each row r,
    /// for t in 0..<count, sixteen at a time (the last step may read and write up to 15 floats
    /// past `count`).
    @inline(__always)
    static func combine(_ terms: Terms, rows: Int, _ src: UnsafePointer<Float>, count: Int,
                        into dst: UnsafeMutablePointer<Float>, rowStride: Int, bias: Float, relu: Bool) {
        terms.start.withUnsafeBufferPointer { start in
        terms.offset.withUnsafeBufferPointer { offset in
        terms.coef.withUnsafeBufferPointer { coef in
            for r in 0..<rows {
                let d = dst + r * rowStride
                let (k0, k1) = (start[r], start[r + 1])
                var t = 0
                while t < count {
                    var a0 = SIMD8<Float>(repeating: bias), a1 = a0
                    for k in k0..<k1 {
                        let p = src + offset[k] + t, c = coef[k]
                        a0 += c * Winograd.load(p)
                        a1 += c * Winograd.load(p + 8)
                    }
                    if relu {
                        a0.replace(with: SIMD8<Float>(), where: a0 .< SIMD8<Float>())
                        a1.replace(with: SIMD8<Float>(), where: a1 .< SIMD8<Float>())
                    }
                    Winograd.store(a0, d + t); Winograd.store(a1, d + t + 8)
                    t += 16
                }
            }
        }
        }
        }
    }
}
