import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiffusion

final class DiffusionNoiseTests: XCTestCase {
    /// Random123's published known-answer vectors (tests/kat_vectors) for Philox4x32-10.
    func testPhiloxKnownAnswers() {
        let cases: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), [UInt32])] = [
            ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff),
             [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
             [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
        ]
        for (ctr, key, want) in cases {
            let r = Philox4x32.block(ctr, key: key)
            XCTAssertEqual([r.0, r.1, r.2, r.3], want)
        }
    }

    func testNormalsAreStandardAndAddressedByIndex() throws {
        let noise = PhiloxNoise(seed: 42)
        let a = try noise.normal(index: 7, shape: [100_000], purpose: .initialLatent)
        var s = 0.0, s2 = 0.0
        for v in a.values { s += Double(v); s2 += Double(v) * Double(v) }
        let mean = s / 1e5, variance = s2 / 1e5 - mean * mean
        XCTAssertEqual(mean, 0, accuracy: 0.02)
        XCTAssertEqual(variance, 1, accuracy: 0.02)
        // The same address gives the same bits; any other coordinate changes them.
        let again = try noise.normal(index: 7, shape: [100_000], purpose: .initialLatent)
        XCTAssertEqual(a.values, again.values)
        let prefix = try noise.normal(index: 7, shape: [13], purpose: .initialLatent)
        XCTAssertEqual(prefix.values, Array(a.values[0..<13]))
        for other in [try noise.normal(index: 8, shape: [16], purpose: .initialLatent),
                      try noise.normal(index: 7, shape: [16], purpose: .samplerStep),
                      try noise.normal(index: 7, shape: [16], purpose: .initialLatent, step: 1),
                      try PhiloxNoise(seed: 43).normal(index: 7, shape: [16], purpose: .initialLatent)] {
            XCTAssertNotEqual(other.values, Array(a.values[0..<16]))
        }
        let batch = try noise.normal(indices: [3, 7], sampleShape: [2, 2], purpose: .initialLatent)
        XCTAssertEqual(Array(batch.values[4..<8]), Array(a.values[0..<4]))
    }

    func testUniformIntsCoverRange() throws {
        let noise = PhiloxNoise(seed: 1)
        var counts = [Int](repeating: 0, count: 10)
        for i in 0..<10_000 { counts[try noise.uniformInt(below: 10, index: i, purpose: .classLabel, step: 0)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 1000, accuracy: 150) }
        XCTAssertThrowsError(try noise.uniformInt(below: 0, index: 0, purpose: .classLabel, step: 0))
        XCTAssertThrowsError(try noise.normal(index: -1, shape: [4], purpose: .initialLatent))
    }

    func testRecordedNoiseServesRowsAndRejectsMissing() throws {
        let initial = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let steps = Tensor(shape: [2, 4, 3], values: (0..<24).map(Float.init))
        let rec = RecordedNoise(initial: initial, steps: steps, labels: [4, 5])
        XCTAssertEqual(try rec.normal(indices: [1], sampleShape: [3], purpose: .initialLatent).values, [4, 5, 6])
        XCTAssertEqual(try rec.normal(index: 2, shape: [3], purpose: .samplerStep, step: 1).values, [18, 19, 20])
        XCTAssertEqual(try rec.uniformInt(below: 10, index: 1, purpose: .classLabel, step: 0), 5)
        XCTAssertThrowsError(try rec.normal(index: 2, shape: [3], purpose: .initialLatent))
        XCTAssertThrowsError(try rec.normal(index: 0, shape: [3], purpose: .samplerStep, step: 2))
        XCTAssertThrowsError(try rec.normal(index: 0, shape: [4], purpose: .samplerStep, step: 0))
        XCTAssertThrowsError(try rec.normal(index: 0, shape: [3], purpose: .vaePosterior))
        XCTAssertThrowsError(try rec.uniformInt(below: 5, index: 1, purpose: .classLabel, step: 0))
    }

    func testLabelPolicies() throws {
        let noise = PhiloxNoise(seed: 9)
        let balanced = try ClassLabeler(policy: .balanced, numClasses: 10, total: 1000, noise: noise)
        let labels = try balanced.labels(for: Array(0..<1000))
        for k in 0..<10 { XCTAssertEqual(labels.filter { $0 == k }.count, 100) }
        XCTAssertNotEqual(labels, (0..<1000).map { $0 % 10 }, "balanced labels are shuffled")
        let again = try ClassLabeler(policy: .balanced, numClasses: 10, total: 1000, noise: noise)
        XCTAssertEqual(try again.labels(for: [999, 3]), [labels[999], labels[3]])

        let uniform = try ClassLabeler(policy: .uniform, numClasses: 1000, total: 50, noise: noise)
        let u = try uniform.labels(for: Array(0..<50))
        XCTAssertEqual(try uniform.labels(for: [49, 0]), [u[49], u[0]])
        XCTAssertTrue(u.allSatisfy { (0..<1000).contains($0) })
        XCTAssertThrowsError(try uniform.label(for: 50))

        let dir = Fixtures.tempDir("labels")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let txt = dir + "/labels.txt"
        try "3\n1\n\n2\n".write(toFile: txt, atomically: true, encoding: .utf8)
        guard case let .list(l) = try ClassLabelPolicy(parsing: txt) else { return XCTFail("not a list") }
        XCTAssertEqual(l, [3, 1, 2])
        let npy = dir + "/labels.npy"
        try NPY.write(NPYArray(int64: [0, 9, 4], shape: [3]), to: npy)
        XCTAssertEqual(try ClassLabelPolicy(parsing: npy), .list([0, 9, 4]))
        XCTAssertThrowsError(try ClassLabeler(policy: .list([0, 10]), numClasses: 10, total: 2, noise: noise)) {
            XCTAssertEqual($0 as? DiffusionError, .labelOutOfRange(label: 10, index: 1, numClasses: 10))
        }
        XCTAssertThrowsError(try ClassLabeler(policy: .list([0]), numClasses: 10, total: 2, noise: noise))
        try "3\nx\n".write(toFile: txt, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ClassLabelPolicy(parsing: txt))
        XCTAssertThrowsError(try ClassLabelPolicy(parsing: dir + "/absent.txt"))
    }
}
