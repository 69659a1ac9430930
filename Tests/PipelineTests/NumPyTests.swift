import XCTest
@testable import PipelineFiles

final class NumPyTests: XCTestCase {
    func testRoundTripAndFixtures() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = NPYArray(float64: [1.5, -2, 3, 4, 5, 6], shape: [2, 3])
        try NPY.write(a, to: dir + "/a.npy")
        let b = try NPY.read(dir + "/a.npy")
        XCTAssertEqual(b.shape, [2, 3]); XCTAssertEqual(b.dtype, .float64); XCTAssertEqual(b.doubles(), a.doubles())
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.npy"))
        XCTAssertEqual((raw.count - 48) % 64, 0, "header padded to 64 bytes")

        let rgb = try NPY.read(try Fixtures.require("images/adm-crop/camera.png.rgb.npy"))
        XCTAssertEqual(rgb.dtype, .uint8); XCTAssertEqual(rgb.shape.count, 3); XCTAssertEqual(rgb.shape[2], 3)
        let feats = try NPY.read(try Fixtures.require("fid/gauss64/features_a.npy"))
        XCTAssertEqual(feats.dtype, .float32); XCTAssertEqual(feats.shape.count, 2)
    }

    func testTruncatedAndForeign() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let full = NPY.encode(NPYArray(uint8: [UInt8](repeating: 7, count: 100), shape: [10, 10]))
        try full.prefix(full.count - 1).write(to: URL(fileURLWithPath: dir + "/t.npy"))
        XCTAssertThrowsError(try NPY.read(dir + "/t.npy")) { XCTAssertTrue("\($0)".contains("t.npy") && "\($0)".contains("truncated")) }
        try Data("nope".utf8).write(to: URL(fileURLWithPath: dir + "/x.npy"))
        XCTAssertThrowsError(try NPY.read(dir + "/x.npy")) { XCTAssertTrue("\($0)".contains("x.npy")) }
    }
}
