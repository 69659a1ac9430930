import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndStrictLoading() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter(metadata: ["note": "x"])
        w.add("a.weight", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        w.add("a.bias", int64: [7, -8])
        w.add("b", float64: [0.1, 0.2])
        let path = dir + "/t.safetensors"
        try w.write(to: path)
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.keys, ["a.bias", "a.weight", "b"])
        XCTAssertEqual(f.metadata["note"], "x")
        XCTAssertEqual(try f.tensor("a.weight").values, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try f.int64s("a.bias"), [7, -8])
        XCTAssertEqual(try f.doubles("b"), [0.1, 0.2])

        let sd = StateDict(f)
        XCTAssertThrowsError(try sd.scope("a").take("weight", shape: [3, 2])) { e in
            XCTAssertEqual(e as? WeightError, .shapeMismatch(file: path, key: "a.weight", expected: [3, 2], found: [2, 3]))
        }
        _ = try sd.scope("a").take("weight", shape: [2, 3])
        XCTAssertThrowsError(try sd.take("missing", shape: [1])) { e in
            XCTAssertEqual(e as? WeightError, .missingKey(file: path, key: "missing"))
        }
        XCTAssertThrowsError(try sd.finish()) { e in
            XCTAssertEqual(e as? WeightError, .unexpectedKeys(file: path, keys: ["a.bias", "b"]))
        }
    }

    func testTruncatedAndForeignFilesAreClearErrors() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter()
        w.add("x", Tensor(shape: [64], repeating: 1))
        let full = try w.encoded()
        let truncated = dir + "/trunc.safetensors"
        try full.prefix(full.count - 10).write(to: URL(fileURLWithPath: truncated))
        XCTAssertThrowsError(try SafeTensorsFile(path: truncated)) { e in
            XCTAssertTrue("\(e)".contains(truncated) && "\(e)".contains("'x'"), "\(e)")
        }
        let text = dir + "/text.safetensors"
        try Data("hello world, not a tensor file".utf8).write(to: URL(fileURLWithPath: text))
        XCTAssertThrowsError(try SafeTensorsFile(path: text)) { e in XCTAssertTrue("\(e)".contains(text)) }
        let empty = dir + "/empty.safetensors"
        FileManager.default.createFile(atPath: empty, contents: Data())
        XCTAssertThrowsError(try SafeTensorsFile(path: empty)) { e in XCTAssertTrue("\(e)".contains(empty)) }
        XCTAssertThrowsError(try SafeTensorsFile(path: dir + "/absent.safetensors"))
    }

    func testReadsFixtureF16Weights() throws {
        let f = try SafeTensorsFile(path: try Fixtures.require("inception/fid-inception/weights.f16.safetensors"))
        let t = try f.tensor("Conv2d_1a_3x3.conv.weight")
        XCTAssertEqual(t.shape, [32, 3, 3, 3])
        XCTAssertGreaterThan(t.maxAbs, 0)
    }
}
