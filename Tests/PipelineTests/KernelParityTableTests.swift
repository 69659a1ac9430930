import Foundation
import XCTest
@testable import PipelineTensor

/// Per-operation parity, as ggml's test-backend-ops does it: every kernel production runs
/// against a plain reference written here (naive loops, Double accumulation), one row per
/// (op, shape) in a printed table, each with a stated bound on its error relative to the
/// reference's largest magnitude. Small shapes, plus one production-sized shape per op (DiT-XL/2
/// at 256 px: 2 items × 256 tokens × 1152; the SD VAE at 256 px; Inception at 8 images); for the
/// large ones the reference computes a sample of the outputs (whole output channels, rows or
/// query tokens), enough to see any indexing or accumulation error.
final class KernelParityTableTests: XCTestCase {
    struct Row {
        var op: String, shape: String
        var maxAbs: Double, maxRel: Double, bound: Double
        var failed: Bool { !(maxRel <= bound) }
    }

    private var rows: [Row] = []
    private var rng = SplitMix64(seed: 12)

    private func random(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in (rng.unitFloat() * 2 - 1) * scale }
    }

    /// Compares `got` with `want` at the given indices (all when nil); the relative error is
    /// |got − want| / max|want| over those indices (floored at 1e-30).
    private func record(_ op: String, _ shape: String, got: UnsafePointer<Float>, want: [Double], at indices: [Int]? = nil,
                        bound: Double) {
        let idx = indices ?? Array(0..<want.count)
        var maxAbs = 0.0, scale = 1e-30
        for (j, i) in idx.enumerated() {
            let w = indices == nil ? want[i] : want[j]
            maxAbs = max(maxAbs, abs(Double(got[i]) - w))
            scale = max(scale, abs(w))
            if !Double(got[i]).isFinite { maxAbs = .infinity }
        }
        rows.append(Row(op: op, shape: shape, maxAbs: maxAbs, maxRel: maxAbs / scale, bound: bound))
    }

    // MARK: references

    /// C (m×n) = A (m×k) · Bᵀ (B n×k) at rows `rowSample`, in Double.
    private func refLinear(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, rows rowSample: [Int]) -> [Double] {
        var out: [Double] = []
        for i in rowSample {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k { acc += Double(a[i * k + p]) * Double(b[j * k + p]) }
                out.append(acc)
            }
        }
        return out
    }

    /// NCHW convolution at output channels `channels`, output ordered (n, channel-in-sample, oy, ox).
    private func refConv(_ x: [Float], n: Int, cin: Int, h: Int, w: Int, weight: [Float], bias: [Float]?, cout: Int,
                         kh: Int, kw: Int, stride: Int, padH: Int, padW: Int, channels: [Int]) -> (out: [Double], oh: Int, ow: Int) {
        let oh = (h + 2 * padH - kh) / stride + 1, ow = (w + 2 * padW - kw) / stride + 1
        var out: [Double] = []
        for b in 0..<n {
            for o in channels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc = Double(bias?[o] ?? 0)
                        for c in 0..<cin {
                            for ky in 0..<kh {
                                let iy = oy * stride - padH + ky
                                if iy < 0 || iy >= h { continue }
                                for kx in 0..<kw {
                                    let ix = ox * stride - padW + kx
                                    if ix < 0 || ix >= w { continue }
                                    acc += Double(x[((b * cin + c) * h + iy) * w + ix]) * Double(weight[((o * cin + c) * kh + ky) * kw + kx])
                                }
                            }
                        }
                        out.append(acc)
                    }
                }
            }
        }
        return (out, oh, ow)
    }

    // MARK: rows

    private func matmul(_ label: String, m: Int, n: Int, k: Int, sampledRows: Int? = nil) {
        let a = random(m * k), b = random(n * k, scale: 1 / Float(k).squareRoot())
        var c = [Float](repeating: 0, count: m * n)
        BLAS.withThreads(1) {
            BLAS.sgemmSplit(transB: true, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, beta: 0, c: &c, ldc: n)
        }
        let sample: [Int] = sampledRows.map { (s: Int) -> [Int] in (0..<s).map { $0 * (m / s) } } ?? Array(0..<m)
        let want = refLinear(a, b, m: m, n: n, k: k, rows: sample)
        var idx: [Int] = []
        for i in sample { for j in 0..<n { idx.append(i * n + j) } }
        c.withUnsafeBufferPointer { record("matmul " + label, "\(m)x\(n)x\(k)", got: $0.baseAddress!, want: want, at: idx, bound: 1e-5) }
    }

    /// NCHW im2col + sgemm (`Convolution.conv2d`) or Winograd F(4x4, 3x3) (`Winograd.conv3x3`).
    private func convNCHW(_ label: String, n: Int, cin: Int, cout: Int, h: Int, w: Int, k: Int, stride: Int = 1, pad: Int,
                          winograd: Bool, sampledChannels: Int? = nil, bound: Double) {
        let x = random(n * cin * h * w), wt = random(cout * cin * k * k, scale: 1 / Float(cin * k * k).squareRoot())
        let bias = random(cout)
        let xt = Tensor(shape: [n, cin, h, w], values: x), wtt = Tensor(shape: [cout, cin, k, k], values: wt)
        let bt = Tensor(shape: [cout], values: bias)
        let y = winograd
            ? Winograd.conv3x3(xt, weight: wtt, bias: bt, padTop: pad, padBottom: pad, padLeft: pad, padRight: pad)
            : Convolution.conv2d(xt, weight: wtt, bias: bt, geometry: Conv2DGeometry(kernel: (k, k), stride: (stride, stride), padding: (pad, pad)))
        let channels: [Int] = sampledChannels.map { (s: Int) -> [Int] in (0..<s).map { $0 * (cout / s) } } ?? Array(0..<cout)
        let (want, oh, ow) = refConv(x, n: n, cin: cin, h: h, w: w, weight: wt, bias: bias, cout: cout, kh: k, kw: k,
                                     stride: stride, padH: pad, padW: pad, channels: channels)
        var idx: [Int] = []
        for b in 0..<n { for o in channels { for i in 0..<(oh * ow) { idx.append((b * cout + o) * oh * ow + i) } } }
        record(label, "\(n)x\(cin)x\(h)x\(w) -> \(cout), \(k)x\(k)/\(stride)", got: y.data, want: want, at: idx, bound: bound)
    }

    /// Channel-major (C, N, H, W) convolution (`PlanarConvolution`, Inception): fast path or im2col.
    private func convPlanar(_ label: String, n: Int, cin: Int, cout: Int, h: Int, w: Int, kh: Int, kw: Int, stride: Int = 1,
                            padH: Int, padW: Int, fast: Bool, sampledChannels: Int? = nil, bound: Double) {
        let xNCHW = random(n * cin * h * w)
        let wt = random(cout * cin * kh * kw, scale: 1 / Float(cin * kh * kw).squareRoot()), bias = random(cout)
        // (C, N, H, W) copy of the input.
        var xCN = [Float](repeating: 0, count: xNCHW.count)
        for b in 0..<n { for c in 0..<cin { for i in 0..<(h * w) { xCN[(c * n + b) * h * w + i] = xNCHW[(b * cin + c) * h * w + i] } } }
        let g = Conv2DGeometry(kernel: (kh, kw), stride: (stride, stride), padding: (padH, padW))
        let conv = PlanarConvolution(weight: Tensor(shape: [cout, cin * kh * kw], values: wt), bias: Tensor(shape: [cout], values: bias),
                                     inChannels: cin, outChannels: cout, geometry: g)
        XCTAssertEqual(conv.fast != nil, fast, "\(label): fast path")
        let (oh, ow) = g.outputSize(height: h, width: w)
        let out = Tensor(uninitialized: [cout, n, oh, ow])
        ConvolutionOptions(fastAlgorithms: fast).run {
            conv.apply(xCN, n: n, h: h, w: w, relu: false, out: out.data, ldOut: n * oh * ow)
        }
        let channels: [Int] = sampledChannels.map { (s: Int) -> [Int] in (0..<s).map { $0 * (cout / s) } } ?? Array(0..<cout)
        let (want, _, _) = refConv(xNCHW, n: n, cin: cin, h: h, w: w, weight: wt, bias: bias, cout: cout, kh: kh, kw: kw,
                                   stride: stride, padH: padH, padW: padW, channels: channels)
        var idx: [Int] = []
        for b in 0..<n { for o in channels { for i in 0..<(oh * ow) { idx.append((o * n + b) * oh * ow + i) } } }
        record(label, "\(cin)x\(n)x\(h)x\(w) -> \(cout), \(kh)x\(kw)/\(stride)", got: out.data, want: want, at: idx, bound: bound)
    }

    private func groupNorm(n: Int, c: Int, hw: Int, groups: Int, silu: Bool) {
        let x = random(n * c * hw, scale: 3).map { $0 + 0.5 }
        let weight = random(c).map { 1 + 0.1 * $0 }, bias = random(c, scale: 0.1)
        let eps: Float = 1e-6
        var out = [Float](repeating: 0, count: x.count)
        Normalization.groupNorm(x, into: &out, batch: n, channels: c, spatial: hw, groups: groups, eps: eps,
                                weight: weight, bias: bias, silu: silu)
        var want = [Double](repeating: 0, count: x.count)
        let cpg = c / groups, size = cpg * hw
        for b in 0..<n {
            for g in 0..<groups {
                let base = (b * groups + g) * size
                var mean = 0.0
                for i in 0..<size { mean += Double(x[base + i]) }
                mean /= Double(size)
                var v = 0.0
                for i in 0..<size { v += (Double(x[base + i]) - mean) * (Double(x[base + i]) - mean) }
                v /= Double(size)
                for i in 0..<size {
                    let ch = g * cpg + i / hw
                    var y = (Double(x[base + i]) - mean) / (v + Double(eps)).squareRoot() * Double(weight[ch]) + Double(bias[ch])
                    if silu { y = y / (1 + Foundation.exp(-y)) }
                    want[base + i] = y
                }
            }
        }
        out.withUnsafeBufferPointer {
            record("group norm" + (silu ? " + SiLU" : ""), "\(n)x\(c)x\(hw), \(groups) groups", got: $0.baseAddress!, want: want, bound: 1e-5)
        }
    }

    private func layerNorm(rows r: Int, width w: Int) {
        let x = random(r * w, scale: 2).map { $0 + 0.3 }
        var y = x
        Normalization.layerNorm(&y, rows: r, width: w, eps: 1e-6)
        var want: [Double] = []
        for i in 0..<r {
            let row = x[(i * w)..<((i + 1) * w)].map(Double.init)
            let mean = row.reduce(0, +) / Double(w)
            let v = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(w)
            want += row.map { ($0 - mean) / (v + 1e-6).squareRoot() }
        }
        y.withUnsafeBufferPointer { record("layer norm", "\(r)x\(w)", got: $0.baseAddress!, want: want, bound: 1e-5) }
    }

    /// Token-major packed q|k|v attention, reference at `queries` tokens of every (item, head).
    private func attentionPacked(batch: Int, tokens t: Int, dim d: Int, heads: Int, queries: [Int]? = nil) {
        let qkv = random(batch * t * 3 * d, scale: 2)
        var out = [Float](repeating: 0, count: batch * t * d)
        Attention.packed(qkv: qkv, out: &out, batch: batch, tokens: t, dim: d, heads: heads)
        let hd = d / heads, ld = 3 * d
        let qs = queries ?? Array(0..<t)
        var want: [Double] = [], idx: [Int] = []
        for b in 0..<batch {
            for i in qs {
                for h in 0..<heads {
                    var s = [Double](repeating: 0, count: t)
                    for j in 0..<t {
                        var acc = 0.0
                        for c in 0..<hd { acc += Double(qkv[(b * t + i) * ld + h * hd + c]) * Double(qkv[(b * t + j) * ld + d + h * hd + c]) }
                        s[j] = acc / Double(hd).squareRoot()
                    }
                    let m = s.max()!
                    let e = s.map { Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    for c in 0..<hd {
                        var o = 0.0
                        for j in 0..<t { o += e[j] / z * Double(qkv[(b * t + j) * ld + 2 * d + h * hd + c]) }
                        want.append(o)
                        idx.append((b * t + i) * d + h * hd + c)
                    }
                }
            }
        }
        out.withUnsafeBufferPointer {
            record("attention packed qkv", "\(batch)x\(t)x\(d), \(heads) heads", got: $0.baseAddress!, want: want, at: idx, bound: 1e-5)
        }
    }

    /// Channel-major single-head attention (VAE), reference at `queries` tokens.
    private func attentionChannelMajor(channels c: Int, tokens t: Int, queries: [Int]? = nil) {
        let q = random(c * t), k = random(c * t), v = random(c * t)
        var scores = [Float](repeating: 0, count: t * t), out = [Float](repeating: 0, count: c * t)
        Attention.channelMajor(q: q, k: k, v: v, channels: c, tokens: t, scores: &scores, out: &out)
        var want: [Double] = [], idx: [Int] = []
        for i in queries ?? Array(0..<t) {
            var s = [Double](repeating: 0, count: t)
            for j in 0..<t {
                var acc = 0.0
                for ch in 0..<c { acc += Double(q[ch * t + i]) * Double(k[ch * t + j]) }
                s[j] = acc / Double(c).squareRoot()
            }
            let m = s.max()!
            let e = s.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for ch in 0..<c {
                var o = 0.0
                for j in 0..<t { o += e[j] / z * Double(v[ch * t + j]) }
                want.append(o)
                idx.append(ch * t + i)
            }
        }
        out.withUnsafeBufferPointer {
            record("attention channel-major", "\(c)x\(t)", got: $0.baseAddress!, want: want, at: idx, bound: 1e-5)
        }
    }

    private func softmax(rows r: Int, width w: Int) {
        let x = random(r * w, scale: 8)
        var y = x
        Softmax.rows(&y, rows: r, width: w)
        var want: [Double] = []
        for i in 0..<r {
            let row = x[(i * w)..<((i + 1) * w)].map(Double.init)
            let m = row.max()!
            let z = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            want += row.map { Foundation.exp($0 - m) / z }
        }
        y.withUnsafeBufferPointer { record("softmax", "\(r)x\(w)", got: $0.baseAddress!, want: want, bound: 1e-6) }
    }

    private func pointwise(_ op: String, count n: Int, kernel: (UnsafeMutablePointer<Float>, Int) -> Void,
                           reference: (Double) -> Double) {
        var x = random(n, scale: 6)
        let want = x.map { reference(Double($0)) }
        x.withUnsafeMutableBufferPointer { kernel($0.baseAddress!, n) }
        x.withUnsafeBufferPointer { record(op, "\(n)", got: $0.baseAddress!, want: want, bound: 1e-6) }
    }

    private func upsample(n: Int, c: Int, h: Int, w: Int) {
        let x = random(n * c * h * w)
        let y = Tensor(shape: [n, c, h, w], values: x).upsampleNearest(scale: 2)
        var want: [Double] = []
        for p in 0..<(n * c) { for oy in 0..<(2 * h) { for ox in 0..<(2 * w) { want.append(Double(x[(p * h + oy / 2) * w + ox / 2])) } } }
        record("upsample nearest x2", "\(n)x\(c)x\(h)x\(w)", got: y.data, want: want, bound: 0)
    }

    private func pool(max isMax: Bool, planes: Int, h: Int, w: Int, k: Int, s: Int, p: Int) {
        let x = random(planes * h * w)
        let oh = Pooling.outputSize(h, kernel: k, stride: s, padding: p), ow = Pooling.outputSize(w, kernel: k, stride: s, padding: p)
        var out = [Float](repeating: 0, count: planes * oh * ow)
        if isMax {
            Pooling.maxPool(x, planes: planes, height: h, width: w, kernel: k, stride: s, padding: p, out: &out)
        } else {
            Pooling.avgPool(x, planes: planes, height: h, width: w, kernel: k, stride: s, padding: p, countIncludePad: false, out: &out)
        }
        var want: [Double] = []
        for pl in 0..<planes {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var m = -Double.infinity, sum = 0.0, count = 0
                    for ky in 0..<k {
                        for kx in 0..<k {
                            let iy = oy * s - p + ky, ix = ox * s - p + kx
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let v = Double(x[(pl * h + iy) * w + ix])
                            m = max(m, v); sum += v; count += 1
                        }
                    }
                    want.append(isMax ? m : sum / Double(count))
                }
            }
        }
        out.withUnsafeBufferPointer {
            record(isMax ? "max pool" : "avg pool (exclude pad)", "\(planes)x\(h)x\(w), \(k)x\(k)/\(s) pad \(p)",
                   got: $0.baseAddress!, want: want, bound: isMax ? 0 : 1e-6)
        }
    }

    // MARK: the table

    func testKernelParityTable() {
        // Matmul: DiT-XL/2 at 256 px, batch 2 (512 token rows): qkv, proj, fc1, fc2, adaLN; the
        // VAE's 1x1 convolutions and attention projections at 32x32 latents (1024 columns).
        matmul("small", m: 7, n: 5, k: 3)
        matmul("odd", m: 33, n: 17, k: 65)
        matmul("DiT-XL/2 qkv", m: 512, n: 3456, k: 1152, sampledRows: 8)
        matmul("DiT-XL/2 proj", m: 512, n: 1152, k: 1152, sampledRows: 8)
        matmul("DiT-XL/2 fc1", m: 512, n: 4608, k: 1152, sampledRows: 4)
        matmul("DiT-XL/2 fc2", m: 512, n: 1152, k: 4608, sampledRows: 4)
        matmul("DiT-XL/2 adaLN", m: 2, n: 6912, k: 1152)
        matmul("VAE 512ch x 1024", m: 1024, n: 512, k: 512, sampledRows: 8)
        // NCHW convolutions (VAE): im2col + sgemm and Winograd F(4x4, 3x3).
        convNCHW("conv im2col", n: 2, cin: 3, cout: 5, h: 9, w: 8, k: 3, pad: 1, winograd: false, bound: 1e-5)
        convNCHW("conv im2col 1x1", n: 1, cin: 16, cout: 8, h: 6, w: 7, k: 1, pad: 0, winograd: false, bound: 1e-5)
        convNCHW("conv im2col stride 2", n: 1, cin: 8, cout: 4, h: 11, w: 10, k: 3, stride: 2, pad: 0, winograd: false, bound: 1e-5)
        convNCHW("conv im2col VAE down", n: 1, cin: 128, cout: 128, h: 65, w: 65, k: 3, stride: 2, pad: 0, winograd: false,
                 sampledChannels: 2, bound: 1e-5)
        convNCHW("winograd 2-D", n: 2, cin: 8, cout: 6, h: 13, w: 9, k: 3, pad: 1, winograd: true, bound: 1e-5)
        convNCHW("winograd 2-D VAE", n: 1, cin: 512, cout: 512, h: 32, w: 32, k: 3, pad: 1, winograd: true,
                 sampledChannels: 2, bound: 1e-5)
        // Channel-major convolutions (Inception): im2col and the fast paths (Winograd 2-D and 1-D).
        convPlanar("planar conv 1x1", n: 2, cin: 24, cout: 16, h: 7, w: 7, kh: 1, kw: 1, padH: 0, padW: 0, fast: false, bound: 1e-5)
        convPlanar("planar conv 3x3 im2col", n: 2, cin: 3, cout: 8, h: 15, w: 15, kh: 3, kw: 3, stride: 2, padH: 0, padW: 0,
                   fast: false, bound: 1e-5)
        convPlanar("planar winograd 3x3", n: 2, cin: 16, cout: 12, h: 17, w: 17, kh: 3, kw: 3, padH: 1, padW: 1, fast: true, bound: 1e-5)
        convPlanar("planar winograd 1-D 1x7", n: 2, cin: 16, cout: 12, h: 17, w: 17, kh: 1, kw: 7, padH: 0, padW: 3, fast: true, bound: 1e-5)
        convPlanar("planar winograd 1-D 7x1", n: 2, cin: 16, cout: 12, h: 17, w: 17, kh: 7, kw: 1, padH: 3, padW: 0, fast: true, bound: 1e-5)
        convPlanar("planar winograd 1-D 1x3", n: 2, cin: 16, cout: 8, h: 8, w: 8, kh: 1, kw: 3, padH: 0, padW: 1, fast: true, bound: 1e-5)
        convPlanar("planar winograd 5x5 (5 x 1x5)", n: 2, cin: 12, cout: 8, h: 35, w: 35, kh: 5, kw: 5, padH: 2, padW: 2,
                   fast: true, bound: 1e-5)
        convPlanar("planar winograd 1x7 Inception", n: 8, cin: 192, cout: 192, h: 17, w: 17, kh: 1, kw: 7, padH: 0, padW: 3,
                   fast: true, sampledChannels: 2, bound: 1e-5)
        convPlanar("planar winograd 3x3 Inception", n: 8, cin: 64, cout: 96, h: 35, w: 35, kh: 3, kw: 3, padH: 1, padW: 1,
                   fast: true, sampledChannels: 2, bound: 1e-5)
        // Normalisations.
        groupNorm(n: 2, c: 8, hw: 25, groups: 4, silu: false)
        groupNorm(n: 1, c: 12, hw: 9, groups: 3, silu: true)
        groupNorm(n: 1, c: 512, hw: 32 * 32, groups: 32, silu: true)
        layerNorm(rows: 5, width: 13)
        layerNorm(rows: 512, width: 1152)
        // Attention: packed multi-head (DiT) and channel-major (VAE mid-block).
        attentionPacked(batch: 2, tokens: 5, dim: 6, heads: 2)
        attentionPacked(batch: 1, tokens: 33, dim: 24, heads: 3)
        attentionPacked(batch: 2, tokens: 256, dim: 1152, heads: 16, queries: [0, 97, 255])
        attentionChannelMajor(channels: 6, tokens: 10)
        attentionChannelMajor(channels: 512, tokens: 1024, queries: [0, 511, 1023])
        softmax(rows: 3, width: 37)
        softmax(rows: 4096, width: 256)
        // Pointwise.
        pointwise("GELU tanh", count: 100_003, kernel: { Activation.geluTanh($0, count: $1) }) {
            0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0)))
        }
        pointwise("SiLU", count: 100_003, kernel: { Activation.silu($0, count: $1) }) { $0 / (1 + Foundation.exp(-$0)) }
        // Resampling and pooling.
        upsample(n: 1, c: 3, h: 5, w: 7)
        upsample(n: 1, c: 512, h: 32, w: 32)
        pool(max: true, planes: 6, h: 9, w: 9, k: 3, s: 2, p: 0)
        pool(max: true, planes: 4, h: 8, w: 7, k: 3, s: 2, p: 1)
        pool(max: true, planes: 192 * 8, h: 71, w: 71, k: 3, s: 2, p: 0)
        pool(max: false, planes: 6, h: 9, w: 8, k: 3, s: 1, p: 1)
        pool(max: false, planes: 4, h: 6, w: 6, k: 2, s: 2, p: 0)
        pool(max: false, planes: 192 * 8, h: 35, w: 35, k: 3, s: 1, p: 1)

        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func number(_ format: String, _ v: Double, _ n: Int) -> String {
            let s = String(format: format, v)
            return String(repeating: " ", count: max(0, n - s.count)) + s
        }
        var lines = [pad("op", 34) + " " + pad("shape", 32) + "     max abs     max rel     bound"]
        for r in rows {
            lines.append(pad(r.op, 34) + " " + pad(r.shape, 32) + number("%.2e", r.maxAbs, 12) + number("%.2e", r.maxRel, 12)
                         + number("%.0e", r.bound, 10) + (r.failed ? "  FAIL" : ""))
        }
        print(lines.joined(separator: "\n"))
        for r in rows where r.failed {
            XCTFail("\(r.op) \(r.shape): max relative error \(r.maxRel) over its bound \(r.bound)")
        }
    }
}
