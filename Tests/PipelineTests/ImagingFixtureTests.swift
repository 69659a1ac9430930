import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging

/// Decoding and ADM's center crop against Pillow's own outputs
/// (`../shared/fixtures/images/adm-crop`).
final class ImagingFixtureTests: XCTestCase {
    struct Entry { let file: String; let mode: String; let width: Int; let height: Int }

    func entries() throws -> [Entry] {
        let manifest = try Fixtures.require("images/adm-crop/manifest.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifest))) as? [String: Any]
        let images = try XCTUnwrap(json?["images"] as? [[String: Any]])
        return try images.map { d in
            let size = try XCTUnwrap(d["size"] as? [Int])
            return Entry(file: try XCTUnwrap(d["file"] as? String), mode: try XCTUnwrap(d["mode"] as? String),
                         width: size[0], height: size[1])
        }
    }

    func reference(_ name: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let a = try NPY.read(try Fixtures.require("images/adm-crop/\(name)"))
        XCTAssertEqual(a.dtype, .uint8, name)
        return (a.shape, a.bytes)
    }

    /// The README's image tolerance: `exact` demands equality; otherwise every
    /// pixel within 1 and at least 99% of them exact.
    func check(_ got: ImageRGB8, _ ref: (shape: [Int], bytes: [UInt8]), exact: Bool, _ what: String) {
        XCTAssertEqual(got.shape, ref.shape, "\(what): shape")
        guard got.shape == ref.shape else { return }
        var worst = 0, equal = 0
        for i in 0..<ref.bytes.count {
            let d = abs(Int(got.pixels[i]) - Int(ref.bytes[i]))
            worst = max(worst, d)
            if d == 0 { equal += 1 }
        }
        let fraction = Double(equal) / Double(ref.bytes.count)
        if exact {
            XCTAssertEqual(worst, 0, "\(what): max difference \(worst), \(fraction * 100)% exact")
        } else {
            XCTAssertLessThanOrEqual(worst, 1, "\(what): max difference \(worst)")
            XCTAssertGreaterThanOrEqual(fraction, 0.99, "\(what): only \(fraction * 100)% exact")
        }
    }

    func testDecodeMatchesPillowConvertRGB() throws {
        let list = try entries()
        XCTAssertEqual(list.count, 5)
        for e in list {
            let path = try Fixtures.require("images/adm-crop/\(e.file)")
            let img = try ImageDecoder.decode(path: path)
            XCTAssertEqual(img.width, e.width, e.file)
            XCTAssertEqual(img.height, e.height, e.file)
            let isPNG = try ImageDecoder.header(path: path).format == .png
            check(img, try reference("\(e.file).rgb.npy"), exact: isPNG, "\(e.file) (\(e.mode)) decode")
        }
    }

    /// Cropping Pillow's own decode: the fixed-point resampling is reproduced
    /// operation for operation, so the crops are required to be bit-exact (the
    /// README allows 1; holding 0 catches any drift in the coefficient code).
    func testCenterCropArrMatchesPillowExactly() throws {
        for e in try entries() {
            let rgb = try reference("\(e.file).rgb.npy")
            let img = try ImageRGB8(width: rgb.shape[1], height: rgb.shape[0], pixels: rgb.bytes)
            for size in [32, 256] {
                let crop = try ADMPreprocess.centerCropArr(img, size: size)
                check(crop, try reference("\(e.file).crop\(size).npy"), exact: true, "\(e.file) center_crop_arr(\(size))")
            }
        }
    }

    /// File to crop, end to end, at the README's tolerance.
    func testDecodeThenCropWithinTolerance() throws {
        for e in try entries() {
            let img = try ImageDecoder.decode(path: try Fixtures.require("images/adm-crop/\(e.file)"))
            for size in [32, 256] {
                let crop = try ADMPreprocess.centerCropArr(img, size: size)
                check(crop, try reference("\(e.file).crop\(size).npy"), exact: false, "\(e.file) decode + center_crop_arr(\(size))")
            }
        }
    }
}
