import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineWeights

final class WeightsConversionTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("convert") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func rawEqual(_ a: TensorSource, _ b: TensorSource, _ key: String) throws -> Bool {
        guard let ia = a.info(key), let ib = b.info(key), ia == ib else { return false }
        return try a.withRawBytes(key) { pa in try b.withRawBytes(key) { pb in memcmp(pa, pb, ia.count * ia.dtype.size) == 0 } }
    }

    func testConvertFixtureCheckpointsRoundTrip() throws {
        let ref = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        for (input, pick, entry) in [("dit/tiny/state_dict.pt", CheckpointPick.ema, nil as String?),
                                     ("dit/tiny/checkpoint.pt", .ema, "ema"), ("dit/tiny/checkpoint.pt", .model, "model")] {
            let out = dir + "/out-\(pick).safetensors"
            let s = try WeightsConversion.toSafeTensors(input: try Fixtures.require(input), output: out, pick: pick)
            XCTAssertEqual(s.tensors, ref.keys.count)
            XCTAssertEqual(s.servedEntry, entry)
            XCTAssertEqual(Int(try FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber ?? 0), s.bytes)
            let back = try XCTUnwrap(try WeightsFile.open(out) as? SafeTensorsFile)
            XCTAssertEqual(back.keys, ref.keys)
            XCTAssertEqual(back.metadata["format"], "pt")
            XCTAssertEqual(back.metadata["checkpoint_entry"], entry)
            for k in ref.keys { XCTAssertTrue(try rawEqual(back, ref, k), "\(input) \(k)") }
        }
        // No temporary files are left beside the outputs.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }, [])
    }

    func testConvertKeepsOrUpcastsDtypes() throws {
        var p = PickleBuilder()
        p.dict([
            ("h", { $0.tensor(storage: "h", type: "HalfStorage", numel: 4, shape: [2, 2], stride: [1, 2]) }),
            ("b", { $0.tensor(storage: "b", type: "BFloat16Storage", numel: 2, shape: [2], stride: [1]) }),
            ("i", { $0.tensor(storage: "i", type: "LongStorage", numel: 2, shape: [2], stride: [1]) }),
        ])
        p.stop()
        let half = [Float16(1), Float16(2), Float16(3), Float16(-4)].map(\.bitPattern)
        let bf = [Float(0.5), Float(-8)].map { UInt16($0.bitPattern >> 16) }
        let input = dir + "/mixed.pt"
        try Data(ZipBuilder.checkpoint(pickle: p.bytes, storages: ["h": bytesOf(half), "b": bytesOf(bf), "i": bytesOf([Int64(-3), 5])]))
            .write(to: URL(fileURLWithPath: input))

        let kept = dir + "/kept.safetensors"
        try WeightsConversion.toSafeTensors(input: input, output: kept)
        let k = try SafeTensorsFile(path: kept)
        XCTAssertEqual(k.info("h"), TensorInfo(dtype: .f16, shape: [2, 2]))
        XCTAssertEqual(k.info("b"), TensorInfo(dtype: .bf16, shape: [2]))
        XCTAssertEqual(try k.tensor("h").values, [1, 3, 2, -4]) // the strided view, written row-major
        XCTAssertEqual(try k.tensor("b").values, [0.5, -8])
        XCTAssertEqual(try k.int64s("i"), [-3, 5])

        let up = dir + "/up.safetensors"
        try WeightsConversion.toSafeTensors(input: input, output: up, upcastToFloat32: true)
        let u = try SafeTensorsFile(path: up)
        XCTAssertEqual(u.info("h"), TensorInfo(dtype: .f32, shape: [2, 2]))
        XCTAssertEqual(u.info("b"), TensorInfo(dtype: .f32, shape: [2]))
        XCTAssertEqual(u.info("i"), TensorInfo(dtype: .i64, shape: [2]))
        XCTAssertEqual(try u.tensor("h").values, [1, 3, 2, -4])
        XCTAssertEqual(try u.tensor("b").values, [0.5, -8])

        // A safetensors input converts to itself, tensor for tensor.
        let again = dir + "/again.safetensors"
        try WeightsConversion.toSafeTensors(input: up, output: again)
        let a = try SafeTensorsFile(path: again)
        for key in u.keys { XCTAssertTrue(try rawEqual(a, u, key), key) }
    }

    func testConvertOfABadInputWritesNothing() throws {
        let bad = dir + "/bad.pt"
        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: bad))
        let out = dir + "/out.safetensors"
        XCTAssertThrowsError(try WeightsConversion.toSafeTensors(input: bad, output: out)) { e in
            XCTAssertTrue("\(e)".contains(bad), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["bad.pt"])
    }
}
