import XCTest
@testable import PipelineTensor

final class TensorCoreTests: XCTestCase {
    private func random(_ shape: [Int], seed: UInt64) -> Tensor {
        var s = seed
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            t.data[i] = Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
        return t
    }

    func testLinearMatchesNaive() {
        let x = random([5, 7], seed: 1), w = random([3, 7], seed: 2), b = random([3], seed: 3)
        let y = x.linear(weight: w, bias: b)
        for r in 0..<5 { for o in 0..<3 {
            var acc = b.data[o]
            for i in 0..<7 { acc += x.data[r * 7 + i] * w.data[o * 7 + i] }
            XCTAssertEqual(y.data[r * 3 + o], acc, accuracy: 1e-5)
        } }
    }

    func testConv2DMatchesNaiveWithAsymmetricPaddingAndStride() {
        let x = random([2, 3, 9, 8], seed: 4), w = random([5, 3, 3, 2], seed: 5), b = random([5], seed: 6)
        let g = Conv2DGeometry(kernel: (3, 2), stride: (2, 1), padTop: 0, padBottom: 1, padLeft: 1, padRight: 0)
        let y = Convolution.conv2d(x, weight: w, bias: b, geometry: g, columnBudget: 40)  // forces row tiling
        let (oh, ow) = g.outputSize(height: 9, width: 8)
        XCTAssertEqual(y.shape, [2, 5, oh, ow])
        for n in 0..<2 { for co in 0..<5 { for oy in 0..<oh { for ox in 0..<ow {
            var acc = b.data[co]
            for ci in 0..<3 { for ky in 0..<3 { for kx in 0..<2 {
                let iy = oy * 2 - 0 + ky, ix = ox - 1 + kx
                if iy >= 0 && iy < 9 && ix >= 0 && ix < 8 {
                    acc += x.data[((n * 3 + ci) * 9 + iy) * 8 + ix] * w.data[((co * 3 + ci) * 3 + ky) * 2 + kx]
                }
            } } }
            XCTAssertEqual(y.data[((n * 5 + co) * oh + oy) * ow + ox], acc, accuracy: 1e-4)
        } } } }
    }

    func testAttentionMatchesNaive() {
        let b = 2, t = 5, heads = 2, hd = 3, d = heads * hd
        let qkv = random([b, t, 3 * d], seed: 7)
        let y = Tensor(uninitialized: [b, t, d])
        Attention.packed(qkv: qkv.data, out: y.data, batch: b, tokens: t, dim: d, heads: heads)
        for bi in 0..<b { for h in 0..<heads { for i in 0..<t {
            var s = [Float](repeating: 0, count: t)
            for j in 0..<t {
                var acc: Float = 0
                for c in 0..<hd {
                    acc += qkv.data[(bi * t + i) * 3 * d + h * hd + c] * qkv.data[(bi * t + j) * 3 * d + d + h * hd + c]
                }
                s[j] = acc / Float(hd).squareRoot()
            }
            let m = s.max()!
            let e = s.map { expf($0 - m) }
            let z = e.reduce(0, +)
            for c in 0..<hd {
                var o: Float = 0
                for j in 0..<t { o += e[j] / z * qkv.data[(bi * t + j) * 3 * d + 2 * d + h * hd + c] }
                XCTAssertEqual(y.data[(bi * t + i) * d + h * hd + c], o, accuracy: 1e-5)
            }
        } } }
    }

    func testLayerNormAndGroupNorm() {
        let x = random([4, 6], seed: 8)
        let y = x.layerNorm(eps: 1e-6)
        for r in 0..<4 {
            let row = (0..<6).map { y.data[r * 6 + $0] }
            XCTAssertEqual(row.reduce(0, +) / 6, 0, accuracy: 1e-5)
            XCTAssertEqual(row.map { $0 * $0 }.reduce(0, +) / 6, 1, accuracy: 1e-3)
        }
        let g = random([1, 4, 3, 3], seed: 9)
        Normalization.groupNorm(g.data, batch: 1, channels: 4, spatial: 9, groups: 2, eps: 1e-6, weight: nil, bias: nil)
        for grp in 0..<2 {
            let vals = (0..<18).map { g.data[grp * 18 + $0] }
            XCTAssertEqual(vals.reduce(0, +) / 18, 0, accuracy: 1e-5)
        }
    }

    func testPermute() {
        let x = Tensor(shape: [2, 3, 4], values: (0..<24).map(Float.init))
        let y = x.permuted([2, 0, 1])
        XCTAssertEqual(y.shape, [4, 2, 3])
        for a in 0..<2 { for b in 0..<3 { for c in 0..<4 {
            XCTAssertEqual(y.data[(c * 2 + a) * 3 + b], x.data[(a * 3 + b) * 4 + c])
        } } }
    }
}
