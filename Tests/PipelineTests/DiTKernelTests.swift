import XCTest
@testable import PipelineTensor
@testable import PipelineDiT

/// The vectorised kernels against plain libm / naive formulas.
final class DiTKernelTests: XCTestCase {
    func testExpMatchesLibm() {
        var worst: Float = 0
        var x: Float = -80
        while x < 80 {
            let e = VectorMath.exp(x), r = expf(x)
            worst = max(worst, abs(e - r) / r)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 4e-7)
        XCTAssertGreaterThan(VectorMath.exp(-1000), 0)
        XCTAssertTrue(VectorMath.exp(1000).isFinite)
    }

    func testGeluTanhMatchesFormula() {
        for i in -2000...2000 {
            let x = Float(i) / 100
            let ref = 0.5 * x * (1 + tanhf(0.7978845608028654 * (x + 0.044715 * x * x * x)))
            XCTAssertEqual(VectorMath.geluTanh(x), ref, accuracy: 2e-6 * max(1, abs(x)), "x = \(x)")
        }
    }

    func testSoftmaxAndReductions() {
        let w = 37
        let p = UnsafeMutablePointer<Float>.allocate(capacity: w)
        defer { p.deallocate() }
        for i in 0..<w { p[i] = Float((i * 13) % 17) - 8.5 }
        let values = (0..<w).map { p[$0] }
        XCTAssertEqual(VectorMath.max(p, count: w), values.max()!)
        XCTAssertEqual(VectorMath.sum(p, count: w), values.reduce(0, +), accuracy: 1e-4)
        Softmax.row(p, width: w)
        let m = values.max()!
        let z = values.map { expf($0 - m) }.reduce(0, +)
        for i in 0..<w { XCTAssertEqual(p[i], expf(values[i] - m) / z, accuracy: 1e-6) }
    }

    func testLayerNormModulateAndGatedResidual() {
        let rows = 6, width = 21, t = 3
        let x = Tensor(shape: [rows, width], values: (0..<rows * width).map { Float(($0 * 7) % 11) - 4 })
        let mod = Tensor(shape: [2, 3 * width], values: (0..<6 * width).map { Float(($0 * 5) % 9) / 10 - 0.4 })
        let out = Tensor(zeros: [rows, width])
        DiTKernels.layerNormModulate(x.data, out: out.data, rows: rows, width: width, tokensPerItem: t, eps: 1e-6,
                                     shift: mod.data, scale: mod.data + width, modStride: 3 * width)
        for r in 0..<rows {
            let row = (0..<width).map { Double(x.data[r * width + $0]) }
            let mean = row.reduce(0, +) / Double(width)
            let v = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
            let item = r / t
            for i in 0..<width {
                let sh = Double(mod.data[item * 3 * width + i]), sc = Double(mod.data[item * 3 * width + width + i])
                let ref = (row[i] - mean) / (v + 1e-6).squareRoot() * (1 + sc) + sh
                XCTAssertEqual(Double(out.data[r * width + i]), ref, accuracy: 1e-5)
            }
        }
        let y = out.copy(), bias = Tensor(shape: [width], repeating: 0.25), before = x.copy()
        DiTKernels.gatedResidual(x.data, y.data, bias: bias.data, gate: mod.data + 2 * width, modStride: 3 * width,
                                 rows: rows, width: width, tokensPerItem: t)
        for r in 0..<rows { for i in 0..<width {
            let g = mod.data[(r / t) * 3 * width + 2 * width + i]
            XCTAssertEqual(x.data[r * width + i], before.data[r * width + i] + g * (y.data[r * width + i] + 0.25), accuracy: 1e-6)
        } }
    }

    func testSplitGEMMMatchesPlain() {
        Threads.set(2)
        for (m, n, k) in [(300, 70, 50), (5, 400, 60), (64, 64, 64)] {
            let a = Tensor(shape: [m, k], values: (0..<m * k).map { Float(($0 * 31) % 19) / 19 - 0.5 })
            let b = Tensor(shape: [n, k], values: (0..<n * k).map { Float(($0 * 17) % 23) / 23 - 0.5 })
            let c1 = Tensor(shape: [m, n], repeating: 1), c2 = Tensor(shape: [m, n], repeating: 1)
            BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k,
                       beta: 0.5, c: c1.data, ldc: n)
            BLAS.withThreads(1) {
                BLAS.sgemmSplit(transB: true, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k,
                                beta: 0.5, c: c2.data, ldc: n)
            }
            assertClose(c2, c1, tol: 1e-6, "split \(m)x\(n)x\(k)")
        }
    }
}
