import Foundation
import XCTest
@testable import PipelineTensor

/// The VAE's tensor kernels against plain references: Winograd against the direct
/// (im2col) convolution, nearest up-sampling, fused GroupNorm + SiLU, the vector exp.
final class VAEKernelTests: XCTestCase {
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
            let t = Tensor(uninitialized: shape)
            for i in 0..<t.count { t.data[i] = next() * scale }
            return t
        }
    }

    func testWinogradMatchesDirectConvolution() {
        var rng = Rng(state: 7)
        // (batch, cin, cout, h, w, padTop, padBottom, padLeft, padRight)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            (1, 8, 8, 16, 16, 1, 1, 1, 1),
            (2, 5, 3, 7, 9, 1, 1, 1, 1),       // sizes not multiples of the 4x4 tile
            (1, 16, 24, 13, 5, 1, 1, 1, 1),
            (1, 3, 4, 6, 6, 0, 0, 0, 0),       // valid convolution
            (1, 4, 6, 9, 10, 0, 1, 0, 1),      // asymmetric pad
            (1, 6, 5, 5, 11, 2, 0, 1, 2),
            (3, 32, 16, 3, 3, 1, 1, 1, 1),     // smaller than one tile
            (1, 9, 7, 1, 1, 1, 1, 1, 1),
            (1, 8, 8, 10, 37, 1, 1, 1, 1),     // a full vector of tiles and a partial one
            (2, 8, 4, 9, 64, 1, 1, 1, 1),      // two full vectors
        ]
        let savedThreads = Threads.count
        defer { Threads.set(savedThreads) }
        // One thread; two threads sharing chunks or, with one chunk, the work inside it;
        // budget 1: a chunk per tile row.
        let standard = ConvolutionOptions.standard.winogradChunkBudget
        for (threads, budget) in [(1, standard), (2, standard), (1, 1), (2, 1), (3, 1)] {
            Threads.set(threads)
            ConvolutionOptions(winogradChunkBudget: budget).run { for (n, cin, cout, h, w, pt, pb, pl, pr) in cases {
                let x = rng.tensor([n, cin, h, w])
                let weight = rng.tensor([cout, cin, 3, 3], scale: 0.5)
                let bias = rng.tensor([cout])
                let g = Conv2DGeometry(kernel: (3, 3), stride: (1, 1), padTop: pt, padBottom: pb, padLeft: pl, padRight: pr)
                let direct = Convolution.conv2d(x, weight: weight, bias: bias, geometry: g)
                let fast = Winograd.conv3x3(x, weight: weight, bias: bias, padTop: pt, padBottom: pb, padLeft: pl, padRight: pr)
                assertClose(fast, direct, tol: 1e-5, "winograd \(x.shape) -> \(cout), pads \(pt),\(pb),\(pl),\(pr), budget \(budget), threads \(threads)")
            } }
        }
    }

    func testWinogradWithoutBias() {
        var rng = Rng(state: 3)
        let x = rng.tensor([1, 8, 10, 10]), weight = rng.tensor([4, 8, 3, 3])
        let direct = Convolution.conv2d(x, weight: weight, bias: nil, geometry: Conv2DGeometry(kernel: (3, 3), padding: (1, 1)))
        let fast = Winograd.conv3x3(x, weight: weight, bias: nil, padTop: 1, padBottom: 1, padLeft: 1, padRight: 1)
        assertClose(fast, direct, tol: 1e-5, "winograd without bias")
    }

    func testUpsampleNearest() {
        let x = Tensor(shape: [1, 2, 2, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        let y = x.upsampleNearest(scale: 2)
        XCTAssertEqual(y.shape, [1, 2, 4, 6])
        XCTAssertEqual(Array(y.values[0..<12]), [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        XCTAssertEqual(Array(y.values[36..<48]), [10, 10, 11, 11, 12, 12, 10, 10, 11, 11, 12, 12])
        let z = x.upsampleNearest(scale: 3)
        XCTAssertEqual(z.shape, [1, 2, 6, 9])
        for c in 0..<2 { for yy in 0..<6 { for xx in 0..<9 {
            XCTAssertEqual(z.data[(c * 6 + yy) * 9 + xx], x.data[(c * 2 + yy / 3) * 3 + xx / 3])
        } } }
    }

    func testFusedGroupNormSiLUMatchesUnfused() {
        var rng = Rng(state: 11)
        let x = rng.tensor([2, 8, 5, 7], scale: 3)
        let w = rng.tensor([8]), b = rng.tensor([8])
        for silu in [false, true] {
            let expected = x.copy()
            Normalization.groupNorm(expected.data, batch: 2, channels: 8, spatial: 35, groups: 4, eps: 1e-6,
                                    weight: w.data, bias: b.data)
            if silu { Activation.silu(expected.data, count: expected.count) }
            let out = Tensor(uninitialized: x.shape)
            Normalization.groupNorm(x.data, into: out.data, batch: 2, channels: 8, spatial: 35, groups: 4, eps: 1e-6,
                                    weight: w.data, bias: b.data, silu: silu)
            assertClose(out, expected, tol: 1e-6, "groupNorm silu \(silu)")
        }
    }

    func testVectorExp() {
        var worst: Float = 0
        var v: Float = -87
        while v < 88 {
            let lanes = SIMD8<Float>(v, v + 0.013, v + 0.027, v + 0.031, v + 0.049, v + 0.052, v + 0.068, v + 0.077)
            let e = VectorMath.exp(lanes)
            for i in 0..<8 { worst = max(worst, abs(e[i] - expf(lanes[i])) / expf(lanes[i])) }
            v += 0.0837
        }
        XCTAssertLessThan(worst, 1e-6)
        XCTAssertEqual(VectorMath.exp(SIMD8(repeating: -1000))[0], expf(-87.3), accuracy: 1e-40)
        XCTAssertFalse(VectorMath.exp(SIMD8(repeating: 1000))[0].isInfinite)
    }
}
