import Foundation
import XCTest
@testable import PipelineImaging

/// Pillow's fixed-point resampling: small cases whose expected values were
/// printed by Pillow 13.0.0 (`Image.fromarray(src).resize(size, filter, box=box)`).
final class ImagingResampleTests: XCTestCase {
    /// 7 x 5 RGB source (numpy HWC) used by the cases below.
    let src: [UInt8] = [168, 229, 184, 171, 238, 171, 20, 206, 245, 153, 204, 5, 37, 53, 213, 206, 192, 173, 6, 120, 63, 96, 236, 131, 118, 4, 87, 161, 124, 71, 42, 73, 237, 16, 194, 250, 10, 103, 206, 13, 143, 2, 38, 71, 133, 118, 36, 98, 196, 35, 57, 146, 50, 179, 145, 104, 206, 53, 141, 33, 181, 39, 151, 11, 180, 138, 66, 0, 165, 98, 123, 12, 144, 184, 24, 38, 129, 1, 202, 255, 85, 54, 228, 48, 127, 169, 1, 167, 109, 247, 16, 192, 78, 220, 8, 60, 189, 181, 64, 72, 8, 185, 88, 111, 191]

    func source() throws -> ImageRGB8 { try ImageRGB8(width: 7, height: 5, pixels: src) }

    func testFiltersMatchPillow() throws {
        let cases: [(ResampleFilter, Int, Int, (Float, Float, Float, Float)?, [UInt8])] = [
            (.bicubic, 4, 5, nil, [166, 233, 187, 83, 214, 158, 107, 120, 145, 93, 148, 120, 110, 133, 105, 123, 78, 118, 18, 145, 253, 11, 129, 94, 75, 55, 113, 174, 35, 99, 125, 100, 169, 123, 87, 97, 34, 96, 151, 108, 112, 41, 103, 172, 20, 118, 239, 65, 139, 148, 114, 103, 122, 108, 182, 95, 78, 78, 70, 190]),
            (.bicubic, 7, 3, nil, [141, 234, 162, 151, 141, 134, 81, 172, 175, 104, 146, 108, 28, 114, 236, 119, 150, 190, 8, 127, 36, 37, 129, 137, 101, 9, 104, 176, 66, 42, 117, 85, 166, 89, 131, 171, 73, 163, 78, 118, 106, 91, 76, 172, 58, 123, 64, 215, 48, 163, 49, 192, 85, 38, 127, 157, 30, 132, 115, 140, 75, 162, 133]),
            (.bilinear, 3, 2, nil, [119, 134, 130, 97, 121, 153, 68, 132, 132, 89, 100, 117, 130, 112, 79, 107, 144, 105]),
            (.hamming, 9, 4, nil, [161, 230, 179, 165, 218, 166, 116, 209, 188, 39, 198, 218, 143, 192, 27, 41, 73, 205, 131, 140, 191, 158, 174, 156, 7, 122, 57, 77, 181, 132, 111, 43, 98, 138, 45, 82, 168, 93, 75, 76, 65, 218, 60, 158, 234, 37, 134, 181, 32, 115, 133, 69, 109, 51, 20, 144, 136, 72, 34, 142, 101, 43, 100, 131, 97, 30, 145, 140, 75, 77, 122, 69, 123, 181, 68, 143, 208, 70, 96, 165, 82, 116, 170, 14, 151, 111, 201, 108, 131, 177, 35, 177, 71, 213, 24, 57, 177, 167, 58, 118, 85, 132, 84, 46, 176, 85, 122, 178]),
            (.lanczos, 4, 7, nil, [167, 239, 203, 78, 226, 154, 125, 118, 132, 100, 146, 131, 139, 189, 145, 96, 144, 131, 50, 142, 208, 36, 146, 107, 99, 98, 86, 151, 33, 111, 29, 134, 255, 28, 105, 89, 74, 56, 109, 181, 30, 102, 120, 104, 169, 122, 89, 94, 25, 70, 149, 130, 82, 45, 108, 169, 42, 132, 221, 55, 76, 127, 142, 98, 121, 68, 140, 146, 28, 93, 178, 122, 143, 157, 114, 109, 119, 120, 191, 80, 78, 71, 57, 204]),
            (.box, 3, 3, nil, [139, 177, 144, 72, 142, 170, 59, 140, 111, 78, 54, 116, 162, 63, 147, 117, 90, 92, 93, 115, 138, 118, 136, 40, 104, 151, 128]),
            // Height shrinks by 3, width by 1: Pillow 13 runs the vertical pass first.
            (.bicubic, 6, 2, nil, [108, 180, 149, 132, 97, 117, 117, 126, 128, 68, 118, 196, 79, 144, 176, 57, 120, 63, 63, 133, 104, 106, 60, 140, 129, 109, 50, 142, 119, 76, 113, 144, 98, 99, 142, 120]),
            // An integral box of the output size is a plain crop.
            (.bicubic, 3, 2, (2, 1, 5, 3), [161, 124, 71, 42, 73, 237, 16, 194, 250, 196, 35, 57, 146, 50, 179, 145, 104, 206]),
            (.bicubic, 4, 3, (1.5, 0.5, 6.25, 5.0), [128, 117, 123, 93, 124, 152, 41, 135, 235, 64, 130, 152, 146, 32, 59, 147, 91, 109, 98, 125, 136, 105, 167, 66, 72, 128, 134, 154, 102, 34, 145, 147, 39, 112, 113, 148]),
        ]
        let img = try source()
        for (filter, w, h, box, expected) in cases {
            let out = try PillowResample.resize(img, width: w, height: h, filter: filter, box: box)
            XCTAssertEqual(out.shape, [h, w, 3])
            XCTAssertEqual(out.pixels, expected, "\(filter) to \(w)x\(h) box \(String(describing: box))")
        }
    }

    func testTallImageCropRunsVerticalPassFirst() throws {
        // 20 x 61 at S=8: BOX to 10x30 and BICUBIC to 8x24 both shrink the height by
        // more than twice the width's pixels, so Pillow 13 resamples vertically
        // first; horizontal-first differs on 60 of these 192 values.
        let w = 20, h = 61
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { px[(y * w + x) * 3 + c] = UInt8((x * 7 + y * 13 + c * 50 + (x * y) % 17) % 256) } } }
        let expected: [UInt8] = [25, 72, 122, 42, 96, 146, 60, 112, 162, 80, 130, 179, 100, 150, 202, 114, 164, 221, 132, 182, 223, 148, 200, 164, 56, 106, 156, 79, 129, 179, 95, 145, 194, 113, 163, 224, 131, 181, 234, 148, 199, 149, 162, 220, 95, 183, 224, 33, 90, 140, 190, 110, 160, 212, 128, 178, 240, 145, 196, 154, 164, 219, 90, 181, 225, 26, 196, 189, 29, 218, 98, 57, 123, 174, 224, 143, 198, 202, 162, 212, 88, 178, 222, 27, 199, 172, 26, 214, 77, 56, 225, 41, 72, 157, 35, 91, 171, 226, 63, 189, 217, 35, 210, 115, 45, 235, 26, 63, 202, 35, 84, 122, 48, 102, 35, 59, 113, 38, 88, 139, 201, 161, 40, 219, 49, 62, 207, 20, 81, 161, 46, 97, 41, 63, 114, 25, 82, 132, 46, 98, 148, 65, 116, 166, 227, 33, 74, 135, 42, 97, 63, 66, 115, 27, 83, 133, 46, 101, 151, 69, 118, 168, 86, 136, 186, 98, 148, 199, 92, 55, 108, 35, 81, 131, 36, 96, 146, 63, 115, 165, 85, 135, 185, 99, 149, 202, 115, 165, 221, 134, 184, 232]
        XCTAssertEqual(try ADMPreprocess.centerCropArr(try ImageRGB8(width: w, height: h, pixels: px), size: 8).pixels, expected)
    }

    func testPassesRoundSeparately() throws {
        // BOX 2x2 -> 1x1 of [[0, 1], [0, 0]]: the horizontal pass rounds (0+1)/2 up
        // to 1, the vertical pass rounds (1+0)/2 up to 1. Averaging all four at once
        // would give 0; Pillow gives 1.
        var px = [UInt8](repeating: 0, count: 12)
        px[3] = 1; px[4] = 1; px[5] = 1
        let out = try PillowResample.resize(try ImageRGB8(width: 2, height: 2, pixels: px), width: 1, height: 1, filter: .box)
        XCTAssertEqual(out.pixels, [1, 1, 1])
    }

    func testIdentityAndInvalidSizes() throws {
        let img = try source()
        XCTAssertEqual(try PillowResample.resize(img, width: 7, height: 5, filter: .bicubic), img)
        XCTAssertThrowsError(try PillowResample.resize(img, width: 0, height: 5, filter: .bicubic))
        XCTAssertThrowsError(try PillowResample.resize(img, width: 3, height: 3, filter: .box, box: (0, 0, 8, 5)))
    }

    func testCenterCropTargetSizeRoundsHalfToEven() throws {
        // 6x4 at S=3: scale 0.75, width 6 * 0.75 = 4.5 -> Python round gives 4
        // (half to even), so the crop starts at x = 0 of a 4x3 resize. Pillow's result:
        let s2: [UInt8] = [48, 68, 100, 249, 67, 40, 127, 45, 33, 51, 206, 229, 217, 85, 53, 204, 120, 134, 31, 216, 14, 127, 160, 29, 208, 161, 116, 100, 83, 151, 198, 160, 173, 193, 54, 126, 126, 57, 118, 170, 107, 131, 59, 173, 52, 139, 181, 169, 63, 196, 144, 15, 138, 137, 135, 245, 15, 140, 59, 142, 252, 140, 76, 231, 51, 218, 125, 69, 151, 117, 140, 92]
        let expected: [UInt8] = [104, 106, 56, 172, 86, 59, 116, 142, 160, 102, 135, 70, 137, 157, 87, 122, 157, 156, 140, 144, 83, 186, 114, 105, 177, 98, 179]
        let img = try ImageRGB8(width: 6, height: 4, pixels: s2)
        XCTAssertEqual(try ADMPreprocess.centerCropArr(img, size: 3).pixels, expected)
        // Rounding half up (width 5, crop at x 1) would differ.
        let halfUp = try PillowResample.resize(img, width: 5, height: 3, filter: .bicubic).cropped(x: 1, y: 0, width: 3, height: 3)
        XCTAssertNotEqual(halfUp.pixels, expected)
    }

    func testCenterCropHalvesWithBoxWhileShortSideIsTwiceTheSize() throws {
        // 40x17 at S=4: 17 >= 8 -> 20x8 (BOX), 8 >= 8 -> 10x4 (BOX), then BICUBIC
        // at scale 1 leaves 10x4 unchanged; the crop takes x 3..<7.
        let pixels: [UInt8] = (0..<(40 * 17 * 3)).map { (i: Int) -> UInt8 in UInt8((i * 37 + i / 120) % 256) }
        let img = try ImageRGB8(width: 40, height: 17, pixels: pixels)
        let halved = try PillowResample.resize(try PillowResample.resize(img, width: 20, height: 8, filter: .box), width: 10, height: 4, filter: .box)
        XCTAssertEqual(try ADMPreprocess.centerCropArr(img, size: 4), try halved.cropped(x: 3, y: 0, width: 4, height: 4))
        XCTAssertThrowsError(try ADMPreprocess.centerCropArr(img, size: 0))
    }

    func testFlipPolicy() throws {
        let img = try source()
        let flipped = img.flippedHorizontally()
        for y in 0..<img.height {
            for x in 0..<img.width { XCTAssertTrue(flipped[x, y] == img[img.width - 1 - x, y]) }
        }
        XCTAssertEqual(flipped.flippedHorizontally(), img)

        let policy = HorizontalFlip.keyed(seed: 1234)
        let decisions = (0..<2000).map { policy.flips(index: $0) }
        XCTAssertEqual(decisions, (0..<2000).map { HorizontalFlip.keyed(seed: 1234).flips(index: $0) }, "reproducible")
        let share = Double(decisions.filter { $0 }.count) / 2000
        XCTAssertEqual(share, 0.5, accuracy: 0.05)
        XCTAssertNotEqual(decisions, (0..<2000).map { HorizontalFlip.keyed(seed: 99).flips(index: $0) }, "seed matters")
        XCTAssertFalse(HorizontalFlip.never.flips(index: 3))
        XCTAssertTrue(HorizontalFlip.always.flips(index: 3))

        let bigPixels: [UInt8] = (0..<(20 * 12 * 3)).map { (i: Int) -> UInt8 in UInt8(i % 256) }
        let big = try ImageRGB8(width: 20, height: 12, pixels: bigPixels)
        let crop = try ADMPreprocess.centerCropArr(big, size: 8)
        XCTAssertEqual(try ADMPreprocess.prepare(big, size: 8, index: 0, flip: .always), crop.flippedHorizontally())
        XCTAssertEqual(try ADMPreprocess.prepare(big, size: 8, index: 0, flip: .never), crop)
    }
}
