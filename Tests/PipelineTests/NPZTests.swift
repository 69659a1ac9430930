import XCTest
@testable import PipelineFiles

final class NPZTests: XCTestCase {
    func testReadsNumpyWrittenStatistics() throws {
        let z = try NPZFile(path: try Fixtures.require("fid/gauss64/stats_a.npz"))
        XCTAssertEqual(Set(z.names), ["mu", "sigma"])
        let mu = try z.array("mu"), sigma = try z.array("sigma")
        // pytorch-fid's mu is np.mean of float32 activations: float32 on disk.
        XCTAssertEqual(mu.dtype, .float32); XCTAssertEqual(sigma.dtype, .float64); XCTAssertEqual(mu.shape, [64]); XCTAssertEqual(sigma.shape, [64, 64])
        XCTAssertThrowsError(try z.array("arr_0")) { e in XCTAssertTrue("\(e)".contains("arr_0")) }
    }

    func roundTrip(compressed: Bool, zip64: Bool) throws {
        let dir = Fixtures.tempDir("npz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.npz"
        let rows = 37, row = [5, 4, 3]
        let rowBytes = row.reduce(1, *)
        let w = try NPZWriter(path: path, compressed: compressed, forceZip64: zip64)
        try w.add("mu", NPYArray(float64: [1.5, -2, 3], shape: [3]))
        // Streamed: header first, then uneven chunks.
        try w.beginArray("arr_0", dtype: .uint8, shape: [rows] + row)
        var all = [UInt8]()
        var written = 0
        for chunk in [1, 10, 0, 26] {
            let bytes = (0..<(chunk * rowBytes)).map { UInt8(truncatingIfNeeded: ($0 + written) * 7 + 3) }
            written += bytes.count
            all += bytes
            try bytes.withUnsafeBytes { try w.append($0) }
        }
        try w.endArray()
        try w.add("arr_1", NPYArray(int64: (0..<Int64(rows)).map { $0 * 3 }, shape: [rows]))
        try w.finish()

        let z = try NPZFile(path: path)
        XCTAssertEqual(z.names, ["mu", "arr_0", "arr_1"])
        XCTAssertEqual(try z.array("mu").doubles(), [1.5, -2, 3])
        XCTAssertEqual(try z.array("arr_1").int64s(), (0..<Int64(rows)).map { $0 * 3 })
        XCTAssertEqual(try z.array("arr_0").bytes, all)
        var it = try z.rows("arr_0", batch: 8)
        var got = [UInt8](), batches = 0
        while let b = try it.next() { got += b.bytes; batches += 1; XCTAssertEqual(Array(b.shape.dropFirst()), row) }
        XCTAssertEqual(batches, 5)
        XCTAssertEqual(got, all)
    }

    func testStoredRoundTrip() throws { try roundTrip(compressed: false, zip64: false) }
    func testDeflateRoundTrip() throws { try roundTrip(compressed: true, zip64: false) }
    func testZip64RoundTrip() throws { try roundTrip(compressed: false, zip64: true) }
    func testZip64DeflateRoundTrip() throws { try roundTrip(compressed: true, zip64: true) }

    func testCorruptionAndTruncationAreErrors() throws {
        let dir = Fixtures.tempDir("npz-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/x.npz"
        let data = (0..<4096).map { Double($0) }
        try NPZWriter.write([("a", NPYArray(float64: data, shape: [4096]))], to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Flip a data byte: CRC mismatch.
        bytes[2000] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/flip.npz"))
        XCTAssertThrowsError(try NPZFile(path: dir + "/flip.npz").array("a")) { e in XCTAssertTrue("\(e)".contains("CRC"), "\(e)") }
        // Truncate: no end record.
        try Data(bytes.prefix(3000)).write(to: URL(fileURLWithPath: dir + "/cut.npz"))
        XCTAssertThrowsError(try NPZFile(path: dir + "/cut.npz")) { e in XCTAssertTrue("\(e)".contains("cut.npz"), "\(e)") }
        // Declared size not honoured by the writer.
        let w = try NPZWriter(path: dir + "/short.npz")
        try w.beginArray("a", dtype: .float32, shape: [4])
        try [Float(1)].withUnsafeBytes { try w.append($0) }
        XCTAssertThrowsError(try w.endArray())
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/short.npz"))
    }
}
