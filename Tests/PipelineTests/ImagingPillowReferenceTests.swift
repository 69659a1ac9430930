import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging

/// Decodes and crops of small images in every quirky mode, against Pillow
/// 13.0.0's own results (Resources/pillow13, see its README).
final class ImagingPillowReferenceTests: XCTestCase {
    static let dir = Fixtures.packageRoot.appendingPathComponent("Tests/PipelineTests/Resources/pillow13").path

    func load(_ name: String) throws -> NPYArray { try NPY.read(Self.dir + "/" + name) }

    func testQuirkyModesMatchPillow() throws {
        let pngs = ["gray16.png", "graya16.png", "rgb16.png", "palette2.png", "gray1.png"]
        let jpegs = ["cmyk.jpg", "progressive.jpg", "subsampled422.jpg", "gray.jpg"]
        for name in pngs + jpegs {
            let img = try ImageDecoder.decode(path: Self.dir + "/" + name)
            let rgb = try load("\(name).rgb.npy")
            XCTAssertEqual(img.shape, rgb.shape, name)
            let diffs = zip(img.pixels, rgb.bytes).map { abs(Int($0) - Int($1)) }
            if pngs.contains(name) {
                XCTAssertEqual(diffs.max(), 0, "\(name): PNG decodes must be exact")
            } else {
                // README tolerance for JPEG (libjpeg-turbo builds may differ by one level).
                XCTAssertLessThanOrEqual(diffs.max() ?? 99, 1, name)
                XCTAssertGreaterThanOrEqual(Double(diffs.filter { $0 == 0 }.count) / Double(diffs.count), 0.99, name)
            }
            // Crop Pillow's decode: BOX 37x29 -> 18x14 -> 9x7, then BICUBIC to
            // (round(7.714..), 6) = (8, 6), crop x 1.
            let ref = try ImageRGB8(width: rgb.shape[1], height: rgb.shape[0], pixels: rgb.bytes)
            let crop = try ADMPreprocess.centerCropArr(ref, size: 6)
            XCTAssertEqual(crop.pixels, try load("\(name).crop6.npy").bytes, "\(name): center_crop_arr(6)")
        }
    }

    func testGray16ReferenceReallyHasClippedValues() throws {
        // Guards the fixture itself: the quirk is only tested if values > 255 occur.
        let h = try ImageDecoder.header(path: Self.dir + "/gray16.png")
        XCTAssertEqual(h.bitDepth, 16)
        XCTAssertEqual(h.pngColorType, 0)
        XCTAssertTrue(try load("gray16.png.rgb.npy").bytes.contains(255))
    }
}
