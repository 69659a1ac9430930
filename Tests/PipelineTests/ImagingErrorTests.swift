import Foundation
import XCTest
@testable import PipelineImaging

/// Bad image files: each gives an ImageError naming the file, never a crash,
/// and nothing is allocated from an unchecked header.
final class ImagingErrorTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = Fixtures.tempDir("imaging-errors") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ data: Data, _ name: String) throws -> String {
        let p = dir + "/" + name
        try data.write(to: URL(fileURLWithPath: p))
        return p
    }

    func samplePNG(width: Int = 20, height: Int = 10) throws -> Data {
        let img = try ImageRGB8(width: width, height: height, pixels: (0..<(width * height * 3)).map { UInt8($0 % 251) })
        return try PNGWriter.encode(img)
    }

    func sampleJPEG(width: Int = 40, height: Int = 24, progressive: Bool = false) throws -> Data {
        try JPEGWriter.encode((0..<(width * height * 3)).map { UInt8(($0 * 7) % 256) }, width: width, height: height,
                              components: 3, quality: 90, progressive: progressive)
    }

    /// Runs `decode` and returns the error's text, failing unless it is an
    /// ImageError that names `path`.
    func failure(_ path: String, limits: ImageDecodeLimits = .standard, file: StaticString = #filePath, line: UInt = #line) -> ImageError? {
        do {
            _ = try ImageDecoder.decode(path: path, limits: limits)
            XCTFail("\(path) decoded", file: file, line: line)
        } catch let e as ImageError {
            XCTAssertTrue(e.description.contains(path), "'\(e)' does not name \(path)", file: file, line: line)
            return e
        } catch {
            XCTFail("unexpected error type \(error)", file: file, line: line)
        }
        return nil
    }

    func testZeroByteFile() throws {
        let p = try write(Data(), "empty.png")
        XCTAssertEqual(failure(p), .empty(file: p))
    }

    func testMissingFileAndDirectory() throws {
        guard case .unreadable = failure(dir + "/nope.jpg") else { return XCTFail("missing file") }
        guard case .unreadable = failure(dir) else { return XCTFail("directory") }
    }

    func testNotAnImage() throws {
        let p = try write(Data("hello, this is text".utf8), "notes.png")
        XCTAssertEqual(failure(p), .unknownFormat(file: p))
    }

    func testWronglySuffixedFilesDecodeByContent() throws {
        let png = try samplePNG(), jpeg = try sampleJPEG()
        let asJPG = try write(png, "really-a-png.jpg")
        let asPNG = try write(jpeg, "really-a-jpeg.png")
        XCTAssertEqual(try ImageDecoder.header(path: asJPG).format, .png)
        XCTAssertEqual(try ImageDecoder.header(path: asPNG).format, .jpeg)
        XCTAssertEqual(try ImageDecoder.decode(path: asJPG), try ImageDecoder.decode(data: png, name: "x"))
        XCTAssertEqual(try ImageDecoder.decode(path: asPNG), try ImageDecoder.decode(data: jpeg, name: "x"))
    }

    func testTruncatedPNG() throws {
        let png = try samplePNG(width: 64, height: 64)
        for keep in [4, 8, 20, 40, png.count / 2, png.count - 20] {
            let p = try write(png.prefix(keep), "cut\(keep).png")
            let e = failure(p)
            if keep >= 8, case let .corrupt(_, format, _)? = e { XCTAssertEqual(format, "PNG") }
            if keep > 40 { XCTAssertTrue(e?.description.contains("truncated") ?? false, "\(e.map(String.init(describing:)) ?? "nil")") }
        }
    }

    func testTruncatedJPEG() throws {
        for progressive in [false, true] {
            let jpeg = try sampleJPEG(width: 96, height: 64, progressive: progressive)
            for keep in [2, 3, 100, jpeg.count / 2, jpeg.count - 2] {
                let p = try write(jpeg.prefix(keep), "cut\(keep)-\(progressive).jpg")
                let e = failure(p)
                if keep >= 100 {
                    XCTAssertTrue(e?.description.contains("truncated") ?? false, "\(e.map(String.init(describing:)) ?? "nil")")
                }
            }
        }
    }

    func testCorruptPNGChecksumAndData() throws {
        var png = try samplePNG(width: 32, height: 32)
        // A wrong checksum on a critical chunk (IHDR's CRC is at bytes 29..32).
        png[30] ^= 0xFF
        let p = try write(png, "crc.png")
        guard case let .corrupt(_, _, reason)? = failure(p) else { return XCTFail("expected corrupt") }
        XCTAssertTrue(reason.contains("CRC"), reason)
        // Damaged IDAT payload: the zlib stream breaks before its CRC is reached.
        var damaged = try samplePNG(width: 32, height: 32)
        let idat = try XCTUnwrap(damaged.range(of: Data("IDAT".utf8)))
        damaged[idat.upperBound + 5] ^= 0xFF
        guard case .corrupt? = failure(try write(damaged, "idat.png")) else { return XCTFail("expected corrupt") }
        // Garbage zlib stream with a valid CRC.
        var bad = try samplePNG(width: 32, height: 32)
        let start = idat.upperBound
        let length = Int(bad[idat.lowerBound - 4]) << 24 | Int(bad[idat.lowerBound - 3]) << 16 | Int(bad[idat.lowerBound - 2]) << 8 | Int(bad[idat.lowerBound - 1])
        for i in 0..<length { bad[start + i] = UInt8((i * 131) & 0xFF) }
        PNGTestSupport.fixCRC(&bad, chunkType: idat.lowerBound)
        _ = failure(try write(bad, "zlib.png"))
    }

    func testBadAncillaryChecksumIsAnErrorAsInPillow() throws {
        // An ancillary chunk (tEXt) before IDAT with a wrong CRC: libpng would only
        // warn; Pillow raises "broken PNG file", and so do we.
        var png = try samplePNG()
        let text = Data([0, 0, 0, 4]) + Data("tEXtab\u{0}c".utf8) + Data([0, 0, 0, 0])
        png.insert(contentsOf: text, at: 33) // after the signature and IHDR
        let p = try write(png, "text.png")
        guard case let .corrupt(_, _, reason)? = failure(p) else { return XCTFail("expected corrupt") }
        XCTAssertTrue(reason.contains("CRC"), reason)
        PNGTestSupport.fixCRC(&png, chunkType: 37)
        XCTAssertEqual(try ImageDecoder.decode(path: try write(png, "text-ok.png")).width, 20)
    }

    func testCorruptJPEG() throws {
        var jpeg = try sampleJPEG()
        // Zero the SOF0 component count.
        let sof = try XCTUnwrap(jpeg.firstRange(of: Data([0xFF, 0xC0])))
        jpeg[sof.lowerBound + 9] = 0
        _ = failure(try write(jpeg, "sof.jpg"))
        // Only SOI and garbage.
        _ = failure(try write(Data([0xFF, 0xD8, 0xFF] + [UInt8](repeating: 0x17, count: 200)), "garbage.jpg"))
    }

    func testHugeDimensionsAreRefusedBeforeAllocating() throws {
        // A PNG header claiming 100000 x 100000 (30 GB of RGB) with a few bytes of data.
        var png = try samplePNG()
        PNGTestSupport.setPNGSize(&png, width: 100_000, height: 100_000)
        let p = try write(png, "huge.png")
        XCTAssertEqual(failure(p), .tooLarge(file: p, width: 100_000, height: 100_000, limit: "at most 65535 pixels per side"))
        // Within the side limit but over the pixel budget.
        var wide = try samplePNG()
        PNGTestSupport.setPNGSize(&wide, width: 60_000, height: 60_000)
        let q = try write(wide, "wide.png")
        guard case .tooLarge? = failure(q) else { return XCTFail("pixel budget") }
        // JPEG: SOF0 claims 30000 x 30000 (over the pixel budget) ...
        var jpeg = try sampleJPEG()
        let sof = try XCTUnwrap(jpeg.firstRange(of: Data([0xFF, 0xC0])))
        for o in [5, 7] { jpeg[sof.lowerBound + o] = 0x75; jpeg[sof.lowerBound + o + 1] = 0x30 }
        let j = try write(jpeg, "huge.jpg")
        XCTAssertEqual(failure(j), .tooLarge(file: j, width: 30000, height: 30000, limit: "at most 178956970 pixels"))
        // ... or 65535 x 65535, which libjpeg itself refuses (its maximum is 65500).
        for o in [5, 6, 7, 8] { jpeg[sof.lowerBound + o] = 0xFF }
        let k = try write(jpeg, "huger.jpg")
        guard case let .corrupt(_, _, reason)? = failure(k) else { return XCTFail("libjpeg limit") }
        XCTAssertTrue(reason.contains("65500"), reason)
        // Caller-chosen limits.
        let small = try write(try samplePNG(width: 300, height: 10), "small.png")
        XCTAssertEqual(failure(small, limits: ImageDecodeLimits(maxDimension: 256)),
                       .tooLarge(file: small, width: 300, height: 10, limit: "at most 256 pixels per side"))
        XCTAssertEqual(try ImageDecoder.decode(path: small, limits: ImageDecodeLimits(maxDimension: 300, maxPixels: 3000)).width, 300)
    }
}

/// PNG byte surgery for the error tests.
enum PNGTestSupport {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: Data) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func put32(_ d: inout Data, _ at: Int, _ v: UInt32) {
        for i in 0..<4 { d[at + i] = UInt8((v >> (24 - 8 * UInt32(i))) & 0xFF) }
    }

    /// Recomputes the CRC of the chunk whose type starts at `chunkType`.
    static func fixCRC(_ d: inout Data, chunkType: Int) {
        let length = Int(d[chunkType - 4]) << 24 | Int(d[chunkType - 3]) << 16 | Int(d[chunkType - 2]) << 8 | Int(d[chunkType - 1])
        let crc = crc32(d.subdata(in: chunkType..<(chunkType + 4 + length)))
        put32(&d, chunkType + 4 + length, crc)
    }

    /// Rewrites IHDR's width and height (IHDR's type starts at byte 12).
    static func setPNGSize(_ d: inout Data, width: UInt32, height: UInt32) {
        put32(&d, 16, width)
        put32(&d, 20, height)
        fixCRC(&d, chunkType: 12)
    }
}
