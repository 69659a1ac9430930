import XCTest
@testable import PipelineTensor
@testable import PipelineMetrics

final class MetricsTests: XCTestCase {
    func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(uninitialized: shape)
        for i in 0..<t.count { t.data[i] = (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
        return t
    }

    func testInceptionScoreLimits() throws {
        // Uniform predictions: every KL is 0, IS = 1.
        XCTAssertEqual(try InceptionScore.compute(logits: Tensor(zeros: [20, 10])), 1, accuracy: 1e-12)
        // Confident, evenly spread over 10 classes: IS = 10.
        let t = Tensor(zeros: [40, 10])
        for i in 0..<40 { t.data[i * 10 + i % 10] = 60 }
        XCTAssertEqual(try InceptionScore.compute(logits: t), 10, accuracy: 1e-6)
    }

    /// The split rule against a direct evaluation of ADM's formula.
    func testInceptionScoreSplits() throws {
        let logits = randomTensor([23, 7], seed: 3, scale: 3)
        func direct(_ rows: Range<Int>) -> Double {
            let p = rows.map { i -> [Double] in
                let r = (0..<7).map { Double(logits.data[i * 7 + $0]) }
                let e = r.map { Foundation.exp($0) }; let s = e.reduce(0, +)
                return e.map { $0 / s }
            }
            let marg = (0..<7).map { j in p.map { $0[j] }.reduce(0, +) / Double(p.count) }
            let kl = p.map { row in (0..<7).map { row[$0] * (Foundation.log(row[$0]) - Foundation.log(marg[$0])) }.reduce(0, +) }
            return Foundation.exp(kl.reduce(0, +) / Double(p.count))
        }
        let want = (direct(0..<10) + direct(10..<20) + direct(20..<23)) / 3
        XCTAssertEqual(try InceptionScore.compute(logits: logits, splitSize: 10), want, accuracy: 1e-12)
        XCTAssertEqual(try InceptionScore.compute(logits: logits), direct(0..<23), accuracy: 1e-12)
    }

    /// Precision/recall against a brute-force evaluation of ADM's definition.
    func testPrecisionRecallBruteForce() throws {
        let ref = randomTensor([60, 5], seed: 1)
        let smp = randomTensor([45, 5], seed: 2, scale: 1.4)
        let r = try PrecisionRecall.compute(reference: ref, samples: smp)
        let a = PrecisionRecall.roundedToHalf(ref), b = PrecisionRecall.roundedToHalf(smp)
        func d2(_ x: Tensor, _ i: Int, _ y: Tensor, _ j: Int) -> Float {
            var s: Float = 0
            for k in 0..<5 { let t = x.data[i * 5 + k] - y.data[j * 5 + k]; s += t * t }
            return s
        }
        func radii(_ x: Tensor) -> [Float] {
            (0..<x.shape[0]).map { i in (0..<x.shape[0]).map { d2(x, i, x, $0) }.sorted()[3] }
        }
        let ra = radii(a), rb = radii(b)
        // Borderline cases (within float16 rounding of a radius) may flip; there are few.
        func frac(_ p: Tensor, _ c: Tensor, _ rc: [Float]) -> Double {
            Double((0..<p.shape[0]).filter { i in (0..<c.shape[0]).contains { d2(p, i, c, $0) <= rc[$0] } }.count) / Double(p.shape[0])
        }
        XCTAssertEqual(r.precision, frac(b, a, ra), accuracy: 2.0 / 45)
        XCTAssertEqual(r.recall, frac(a, b, rb), accuracy: 2.0 / 60)
        // A set against itself: everything is inside.
        let same = try PrecisionRecall.compute(reference: ref, samples: ref)
        XCTAssertEqual(same.precision, 1); XCTAssertEqual(same.recall, 1)
        // Far-apart sets: nothing is.
        let far = randomTensor([45, 5], seed: 2)
        for i in 0..<far.count { far.data[i] += 50 }
        let apart = try PrecisionRecall.compute(reference: ref, samples: far)
        XCTAssertEqual(apart.precision, 0); XCTAssertEqual(apart.recall, 0)
    }

    /// KID with one subset holding every vector equals the unbiased MMD² computed directly.
    func testKIDMatchesDirectMMD() throws {
        let x = randomTensor([30, 6], seed: 4), y = randomTensor([30, 6], seed: 5, scale: 1.3)
        let r = try KernelInceptionDistance.compute(x, y, subsets: 1, subsetSize: 30)
        func k(_ a: Tensor, _ i: Int, _ b: Tensor, _ j: Int) -> Double {
            var s = 0.0
            for t in 0..<6 { s += Double(a.data[i * 6 + t]) * Double(b.data[j * 6 + t]) }
            return Foundation.pow(s / 6 + 1, 3)
        }
        var xx = 0.0, yy = 0.0, xy = 0.0
        for i in 0..<30 { for j in 0..<30 {
            if i != j { xx += k(x, i, x, j); yy += k(y, i, y, j) }
            xy += k(x, i, y, j)
        } }
        let want = (xx + yy) / (30 * 29) - 2 * xy / (30 * 30)
        XCTAssertEqual(r.mean, want, accuracy: 1e-5 * max(1, abs(want)))
        XCTAssertEqual(r.std, 0, accuracy: 1e-12)
    }
}
