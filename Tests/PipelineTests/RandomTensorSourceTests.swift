import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineDiT

/// The pieces random weights are made of: streams that jump, slices of one draw, and the
/// random source behind the strict loader.
final class RandomTensorSourceTests: XCTestCase {
    func testStreamsSkipExactly() {
        for n in [0, 1, 2, 7, 65_536, 1_000_003] {
            var stepped = LCG64(state: 12345), jumped = stepped
            for _ in 0..<n { _ = stepped.next() }
            jumped.skip(n)
            XCTAssertEqual(jumped.state, stepped.state, "LCG64 skip \(n)")
            var s = SplitMix64(seed: 99), j = s
            for _ in 0..<n { _ = s.next() }
            j.skip(n)
            XCTAssertEqual(j.next(), s.next(), "SplitMix64 skip \(n)")
        }
    }

    /// Any slice of a `uniform` draw, including ones that straddle its 2¹⁶-element chunks,
    /// equals those elements of the whole draw.
    func testSlicesOfOneDrawMatchTheWhole() {
        var rng = SplitMix64(seed: 4), copy = rng
        let base = copy.next()
        let whole = rng.uniform([3 * 65_536 + 17], bound: 0.5)
        for (offset, count) in [(0, 10), (65_530, 20), (1000, 2 * 65_536 + 5), (3 * 65_536, 17)] {
            let part = Tensor(uninitialized: [count])
            SplitMix64.fillUniform(part.data, count: count, base: base, offset: offset, bound: 0.5)
            XCTAssertEqual(part.values, Array(whole.values[offset..<(offset + count)]), "slice at \(offset)")
        }
    }

    /// A random DiT is read by the strict loader: its source names itself in errors, and a
    /// config that does not match the source's layout is refused like a checkpoint's.
    func testRandomSourceGoesThroughTheStrictLoader() throws {
        let config = DiTConfig(inputSize: 4, patchSize: 2, inChannels: 4, hiddenSize: 32, depth: 1, numHeads: 2, numClasses: 3)
        let source = try config.randomWeights(seed: 1)
        XCTAssertEqual(source.info("blocks.0.attn.qkv.weight"), TensorInfo(dtype: .f32, shape: [96, 32]))
        XCTAssertNil(source.info("pos_embed"))
        XCTAssertThrowsError(try source.tensor("nope")) { XCTAssertTrue("\($0)".contains("nope"), "\($0)") }
        var other = config
        other.layout = .diffusers
        XCTAssertThrowsError(try DiT(config: other, weights: source)) { e in
            XCTAssertTrue("\(e)".contains("random DiT seed 1"), "\(e)")
        }
        XCTAssertThrowsError(try RandomTensorSource(name: "twice", entries: [
            .init(key: "a", shape: [1]) { $0[0] = 0 }, .init(key: "a", shape: [1]) { $0[0] = 1 },
        ])) { XCTAssertTrue("\($0)".contains("\"a\""), "\($0)") }
    }
}
