import Foundation
import XCTest
@testable import PipelineTensor

/// The fast convolutions of the channel-major layout (`PlanarConvolution`: Winograd F(4x4, 3x3)
/// and 1-D F(4, 7) / F(4, 5) / F(4, 3)) against im2col + sgemm on random weights, for Inception's shapes
/// and awkward ones; the switch that turns them off.
final class PlanarWinogradTests: XCTestCase {
    var rng = SplitMix64(seed: 11)

    func random(_ shape: [Int], scale: Float = 1) -> Tensor {
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
        return t
    }

    /// Runs the convolution both ways into a channel slice of a wider output (rows `offset..<offset+cout`
    /// of `total`), and returns the worst difference relative to the direct output's largest value.
    func compare(n: Int, cin: Int, cout: Int, h: Int, w: Int, geometry g: Conv2DGeometry, relu: Bool,
                 expectFast: Bool, file: StaticString = #filePath, line: UInt = #line) -> Float {
        let x = random([cin, n, h, w])
        let fanIn = cin * g.kernelH * g.kernelW
        let weight = random([cout, fanIn], scale: 2 / Float(fanIn).squareRoot())
        let bias = random([cout], scale: 0.5)
        let conv = PlanarConvolution(weight: weight, bias: bias, inChannels: cin, outChannels: cout, geometry: g)
        XCTAssertEqual(conv.fast != nil, expectFast, "fast path chosen", file: file, line: line)
        let (oh, ow) = g.outputSize(height: h, width: w)
        let plane = n * oh * ow, offset = 3, total = cout + 5
        let fast = Tensor(zeros: [total, n, oh, ow]), direct = Tensor(zeros: [total, n, oh, ow])
        conv.apply(x.data, n: n, h: h, w: w, relu: relu, out: fast.data + offset * plane, ldOut: plane)
        PlanarConv.conv(x: x.data, cin: cin, n: n, h: h, w: w, weight: weight.data, bias: bias.data, cout: cout,
                        geometry: g, relu: relu, out: direct.data + offset * plane, ldOut: plane)
        // Rows outside the slice stay untouched.
        for i in Array(0..<(offset * plane)) + Array(((offset + cout) * plane)..<(total * plane)) where fast.data[i] != 0 {
            XCTFail("wrote outside the slice at \(i)", file: file, line: line); break
        }
        let scale = max(direct.maxAbs, 1e-20)
        var worst: Float = 0
        for i in 0..<direct.count { worst = max(worst, abs(fast.data[i] - direct.data[i])) }
        return worst / scale
    }

    /// Shapes: (n, cin, cout, h, w, kernel, padding).
    typealias Case = (Int, Int, Int, Int, Int, (Int, Int), (Int, Int))

    func check(_ cases: [Case], tol: Float, expectFast: Bool = true) {
        let savedThreads = Threads.count, standard = ConvolutionOptions.standard.planarChunkBudget
        defer { Threads.set(savedThreads) }
        // Default budget; a tiny one (a chunk per tile row or per image); one and two threads.
        for (threads, budget) in [(1, standard), (2, standard), (2, 1), (1, 1), (3, 20_000)] {
            Threads.set(threads)
            var options = ConvolutionOptions.current
            options.planarChunkBudget = budget
            options.run { for (n, cin, cout, h, w, k, p) in cases {
                for relu in [false, true] {
                    let err = compare(n: n, cin: cin, cout: cout, h: h, w: w,
                                      geometry: Conv2DGeometry(kernel: k, padding: p), relu: relu, expectFast: expectFast)
                    XCTAssertLessThanOrEqual(err, tol, "\(k) pad \(p) on (\(cin), \(n), \(h), \(w)) -> \(cout), relu \(relu), threads \(threads), budget \(budget)")
                }
            } }
        }
    }

    /// Winograd F(4x4, 3x3) on the planar layout: Inception's 8x8 and 35x35 "same" convolutions,
    /// the valid ones (Conv2d_2a / 4a), and sizes that leave partial tiles.
    func testWinograd3x3MatchesIm2col() {
        check([(2, 24, 40, 8, 8, (3, 3), (1, 1)),
               (3, 16, 12, 35, 35, (3, 3), (1, 1)),
               (2, 8, 16, 19, 21, (3, 3), (0, 0)),
               (1, 9, 7, 5, 3, (3, 3), (1, 1)),
               (4, 12, 8, 2, 2, (3, 3), (1, 1))], tol: 1e-5)
    }

    /// 1-D Winograd F(4, 7) for 1x7 / 7x1 (Mixed_6b–6e, Mixed_7a), F(4, 3) for 1x3 / 3x1 (Mixed_7b/c),
    /// F(4, 5) rows for 5x5 (Mixed_5b–5d).
    func testWinograd1DMatchesIm2col() {
        check([(2, 16, 24, 17, 17, (1, 7), (0, 3)),
               (2, 16, 24, 17, 17, (7, 1), (3, 0)),
               (3, 10, 8, 9, 13, (1, 7), (0, 3)),
               (1, 10, 8, 13, 9, (7, 1), (3, 0)),
               (2, 12, 8, 11, 10, (1, 7), (0, 0)),
               (2, 24, 16, 8, 8, (1, 3), (0, 1)),
               (2, 24, 16, 8, 8, (3, 1), (1, 0)),
               (1, 8, 8, 5, 7, (3, 1), (1, 0)),
               (1, 16, 8, 9, 9, (1, 7), (1, 3)),        // padding across the axis
               (3, 12, 16, 35, 35, (5, 5), (2, 2)),     // Mixed_5b–5d's 5x5: five accumulated 1x5 rows
               (2, 9, 6, 7, 12, (5, 5), (0, 1)),
               (2, 8, 8, 6, 11, (3, 7), (1, 2))], tol: 2e-5)
    }

    /// Kernels without a fast algorithm (strided, few channels, kernel widths without a
    /// preferred F(m, r)) fall back to im2col, bit for bit.
    func testFallbacksAreExact() {
        check([(2, 16, 8, 11, 11, (4, 4), (2, 2)),
               (2, 4, 8, 9, 9, (3, 3), (1, 1)),
               (1, 16, 8, 9, 9, (2, 1), (0, 0))], tol: 0, expectFast: false)
        let strided = Conv2DGeometry(kernel: (3, 3), stride: (2, 2))
        let c = PlanarConvolution(weight: random([8, 16 * 9]), bias: nil, inChannels: 16, outChannels: 8, geometry: strided)
        XCTAssertNil(c.fast)
    }

    /// `fastAlgorithms: false` gives the im2col arithmetic exactly.
    func testSwitchOffIsIm2col() {
        ConvolutionOptions(fastAlgorithms: false).run {
            check([(2, 16, 24, 17, 17, (1, 7), (0, 3)), (2, 24, 40, 8, 8, (3, 3), (1, 1))], tol: 0)
        }
    }

    /// The Toom-Cook construction for other (m, r) and point sets, in one dimension against
    /// the direct correlation, for a filter and input of known values.
    func testWinograd1DConstruction() {
        let variants = [Winograd1D(outputs: 2, kernel: 3, points: [0, 1, -1]),
                        Winograd1D(outputs: 3, kernel: 5, points: [0, 1, -1, 2, -2, 0.5]),
                        Winograd1D(outputs: 6, kernel: 3, points: [0, 1, -1, 2, -2, 0.5, -0.5]),
                        Winograd1D(outputs: 1, kernel: 4, points: [0, 1, -1]),
                        Winograd1D.preferred(kernel: 7)!, Winograd1D.preferred(kernel: 5)!,
                        Winograd1D.preferred(kernel: 3)!]
        for f in variants {
            let (m, r) = (f.outputs, f.kernel)
            let g = (0..<r).map { Float($0) * 0.25 - 0.3 }
            let d = (0..<(m + r - 1)).map { Float(($0 * 7) % 5) - 1.5 }
            let u = f.transformWeights(g, cout: 1, cin: 1)
            // Bᵀd, then the product, then Aᵀ.
            let v = f.inputRows.map { row in row.reduce(Float(0)) { $0 + $1.1 * d[$1.0] } }
            let prod = (0..<f.alpha).map { u.data[$0] * v[$0] }
            for i in 0..<m {
                let y = f.outputRows[i].reduce(Float(0)) { $0 + $1.1 * prod[$1.0] }
                let expected = (0..<r).reduce(Float(0)) { $0 + d[i + $1] * g[$1] }
                XCTAssertEqual(y, expected, accuracy: 1e-4, "F(\(m), \(r)) output \(i)")
            }
        }
    }
}
