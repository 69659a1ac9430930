import Foundation
import XCTest
@testable import PipelineImaging

/// Every PNG and JPEG variant Pillow opens, made here through libpng/libjpeg, and
/// decoded against the values Pillow's unpackers and `convert("RGB")` give.
final class ImagingCodecTests: XCTestCase {
    /// Deterministic test pattern.
    func pattern(_ n: Int, seed: UInt64) -> [UInt8] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: s >> 33)
        }
    }

    func png(_ rows: [UInt8], width: Int, height: Int, bitDepth: Int, colorType: Int, palette: [UInt8] = [],
             trns: [UInt8] = [], interlaced: Bool = false) throws -> Data {
        let stride = rows.count / height
        return try rows.withUnsafeBytes {
            try PNGWriter.encodeRows($0, stride: stride, width: width, height: height, bitDepth: bitDepth, colorType: colorType,
                                     palette: palette, transparency: trns, interlaced: interlaced, name: "test")
        }
    }

    func decode(_ data: Data, _ name: String = "test") throws -> ImageRGB8 {
        try ImageDecoder.decode(data: data, name: name)
    }

    func gray(_ v: [UInt8]) -> [UInt8] { v.flatMap { [$0, $0, $0] } }

    // MARK: PNG

    func testPNGGrayLowBitDepthsScaleLikePillow() throws {
        let w = 13, h = 5
        for bd in [1, 2, 4] {
            let perRow = (w * bd + 7) / 8
            let raw = pattern(perRow * h, seed: UInt64(bd))
            var expected: [UInt8] = []
            for y in 0..<h {
                for x in 0..<w {
                    let bit = x * bd
                    let s = (Int(raw[y * perRow + bit / 8]) >> (8 - bd - bit % 8)) & ((1 << bd) - 1)
                    // "1" -> 0/255, "L;2" -> *85, "L;4" -> *17.
                    expected.append(UInt8(s * 255 / ((1 << bd) - 1)))
                }
            }
            for interlaced in [false, true] {
                let img = try decode(try png(raw, width: w, height: h, bitDepth: bd, colorType: 0, interlaced: interlaced))
                XCTAssertEqual(img.pixels, gray(expected), "gray \(bd)-bit interlaced \(interlaced)")
            }
        }
    }

    func testPNGGray16ClipsAt255LikePillowI16() throws {
        // Pillow opens 16-bit gray as I;16 and converts to RGB by clipping (I16_RGB):
        // 0x0000..0x00FF keep their value, anything larger is 255 (not the high byte).
        let values: [UInt16] = [0, 1, 200, 255, 256, 300, 0x1234, 0xFF00, 0xFFFF, 128]
        let raw = values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let img = try decode(try png(raw, width: values.count, height: 1, bitDepth: 16, colorType: 0))
        XCTAssertEqual(img.pixels, gray(values.map { $0 > 255 ? 255 : UInt8($0) }))
        // With a tRNS colour the result is the same (transparency is dropped).
        let t = try decode(try png(raw, width: values.count, height: 1, bitDepth: 16, colorType: 0, trns: [0, 200]))
        XCTAssertEqual(t.pixels, img.pixels)
    }

    func testPNG16BitColourKeepsHighByte() throws {
        let w = 7, h = 3
        // RGB;16B, RGBA;16B and LA;16B unpack the most significant byte.
        for (ct, ch) in [(2, 3), (6, 4), (4, 2)] {
            let raw = pattern(w * h * ch * 2, seed: UInt64(ct))
            var expected: [UInt8] = []
            for p in 0..<(w * h) {
                let px = Array(raw[(p * ch * 2)..<((p + 1) * ch * 2)])
                if ch == 2 { expected += [px[0], px[0], px[0]] } else { expected += [px[0], px[2], px[4]] }
            }
            for interlaced in [false, true] {
                let img = try decode(try png(raw, width: w, height: h, bitDepth: 16, colorType: ct, interlaced: interlaced))
                XCTAssertEqual(img.pixels, expected, "colour type \(ct), 16-bit, interlaced \(interlaced)")
            }
        }
    }

    func testPNG8BitAlphaIsDroppedNotComposited() throws {
        let w = 9, h = 4
        for (ct, ch) in [(4, 2), (6, 4), (2, 3)] {
            let raw = pattern(w * h * ch, seed: UInt64(10 + ct))
            var expected: [UInt8] = []
            for p in 0..<(w * h) {
                let px = Array(raw[(p * ch)..<((p + 1) * ch)])
                if ch == 2 { expected += [px[0], px[0], px[0]] } else { expected += [px[0], px[1], px[2]] }
            }
            let img = try decode(try png(raw, width: w, height: h, bitDepth: 8, colorType: ct))
            XCTAssertEqual(img.pixels, expected, "colour type \(ct)")
        }
    }

    func testPNGPaletteWithTransparencyUsesPaletteColours() throws {
        let w = 11, h = 6
        for bd in [1, 2, 4, 8] {
            let entries = 1 << bd
            let palette = pattern(entries * 3, seed: UInt64(100 + bd))
            let trns = (0..<entries).map { UInt8(($0 * 37) & 0xFF) } // alpha per entry, ignored by convert("RGB")
            let perRow = (w * bd + 7) / 8
            var raw = pattern(perRow * h, seed: UInt64(200 + bd))
            if bd == 8 { raw = raw.map { $0 % UInt8(entries - 1) } }
            var expected: [UInt8] = []
            for y in 0..<h {
                for x in 0..<w {
                    let bit = x * bd
                    let idx = (Int(raw[y * perRow + bit / 8]) >> (8 - bd - bit % 8)) & (entries - 1)
                    expected += palette[(idx * 3)..<(idx * 3 + 3)]
                }
            }
            for interlaced in [false, true] {
                let img = try decode(try png(raw, width: w, height: h, bitDepth: bd, colorType: 3, palette: palette,
                                             trns: trns, interlaced: interlaced))
                XCTAssertEqual(img.pixels, expected, "palette \(bd)-bit interlaced \(interlaced)")
            }
        }
    }

    func testPNGWriterRoundTripsAtomically() throws {
        let dir = Fixtures.tempDir("png-writer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = try ImageRGB8(width: 37, height: 21, pixels: pattern(37 * 21 * 3, seed: 7))
        let path = dir + "/out/sample.png"
        try PNGWriter.write(img, to: path)
        XCTAssertEqual(try ImageDecoder.decode(path: path), img)
        XCTAssertEqual(try ImageDecoder.header(path: path), ImageHeader(format: .png, width: 37, height: 21, bitDepth: 8, pngColorType: 2,
                                                                       components: 3, interlaced: false, progressive: false, jpegColorSpace: nil))
        // Only the final file is left: the temporary was renamed into place.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out"), ["sample.png"])
        // Overwrite in place.
        let other = img.flippedHorizontally()
        try PNGWriter.write(other, to: path)
        XCTAssertEqual(try ImageDecoder.decode(path: path), other)
    }

    // MARK: JPEG

    /// An image of flat 8x8 blocks: at quality 100 without subsampling, JPEG keeps
    /// such blocks exactly (DC only, unit quantisers), so decodes are known exactly.
    func flatBlocks(width: Int, height: Int, components: Int, seed: UInt64) -> [UInt8] {
        let bw = (width + 7) / 8, bh = (height + 7) / 8
        let colours = pattern(bw * bh * components, seed: seed)
        var out = [UInt8](repeating: 0, count: width * height * components)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<components {
                    out[(y * width + x) * components + c] = colours[((y / 8) * bw + x / 8) * components + c]
                }
            }
        }
        return out
    }

    func testJPEGGrayscaleBaselineAndProgressive() throws {
        let w = 40, h = 24
        let px = flatBlocks(width: w, height: h, components: 1, seed: 3)
        for progressive in [false, true] {
            let data = try JPEGWriter.encode(px, width: w, height: h, components: 1, quality: 100, progressive: progressive)
            let header = try ImageDecoder.header(data.withUnsafeBytes { UnsafeRawBufferPointer($0) }, name: "g")
            XCTAssertEqual(header.progressive, progressive)
            XCTAssertEqual(header.jpegColorSpace, .grayscale)
            XCTAssertEqual(try decode(data).pixels, gray(px), "grayscale progressive \(progressive)")
        }
    }

    func testJPEGProgressiveDecodesLikeBaseline() throws {
        // Progressive coding is lossless over the quantised coefficients, so with
        // the same tables and sampling the pixels equal the baseline decode
        // (4:2:0 exercises fancy upsampling).
        let w = 53, h = 37
        let px = pattern(w * h * 3, seed: 11)
        let base = try JPEGWriter.encode(px, width: w, height: h, components: 3, quality: 85, subsample420: true)
        let prog = try JPEGWriter.encode(px, width: w, height: h, components: 3, quality: 85, progressive: true, subsample420: true)
        XCTAssertNotEqual(base, prog)
        let header = try ImageDecoder.header(prog.withUnsafeBytes { UnsafeRawBufferPointer($0) }, name: "p")
        XCTAssertTrue(header.progressive)
        XCTAssertEqual(try decode(prog), try decode(base))
    }

    func testJPEGRGBStoredWithoutColourTransform() throws {
        let w = 24, h = 16
        let px = flatBlocks(width: w, height: h, components: 3, seed: 5)
        let data = try JPEGWriter.encode(px, width: w, height: h, components: 3, colorSpace: .rgb, quality: 100)
        XCTAssertEqual(try ImageDecoder.header(data.withUnsafeBytes { UnsafeRawBufferPointer($0) }, name: "r").jpegColorSpace, .rgb)
        XCTAssertEqual(try decode(data).pixels, px)
    }

    /// Pillow's reading of CMYK: rawmode "CMYK;I" inverts the stored samples,
    /// then cmyk2rgb gives `clip(nk - MULDIV255(c, nk))` with nk = 255 - k.
    func pillowCMYK(_ stored: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for p in 0..<(stored.count / 4) {
            let c = 255 - Int(stored[4 * p]), m = 255 - Int(stored[4 * p + 1]), y = 255 - Int(stored[4 * p + 2])
            let nk = 255 - (255 - Int(stored[4 * p + 3]))
            for v in [c, m, y] {
                let t = v * nk + 128
                out.append(UInt8(max(0, min(255, nk - (((t >> 8) + t) >> 8)))))
            }
        }
        return out
    }

    func testJPEGCMYKUsesAdobeInvertedPolarity() throws {
        let w = 32, h = 16
        let px = flatBlocks(width: w, height: h, components: 4, seed: 9)
        let data = try JPEGWriter.encode(px, width: w, height: h, components: 4, colorSpace: .cmyk, quality: 100)
        XCTAssertEqual(try ImageDecoder.header(data.withUnsafeBytes { UnsafeRawBufferPointer($0) }, name: "c").jpegColorSpace, .cmyk)
        let img = try decode(data)
        XCTAssertEqual(img.pixels, pillowCMYK(px))
        // A stored value of 255 in every channel is "no ink" in Adobe's convention: white.
        let white = try JPEGWriter.encode([UInt8](repeating: 255, count: 8 * 8 * 4), width: 8, height: 8, components: 4,
                                          colorSpace: .cmyk, quality: 100)
        XCTAssertEqual(Set(try decode(white).pixels), [255])
    }

    func testJPEGYCCKConvertsThroughCMYK() throws {
        let w = 32, h = 16
        let px = flatBlocks(width: w, height: h, components: 4, seed: 13)
        let data = try JPEGWriter.encode(px, width: w, height: h, components: 4, colorSpace: .ycck, quality: 100)
        XCTAssertEqual(try ImageDecoder.header(data.withUnsafeBytes { UnsafeRawBufferPointer($0) }, name: "y").jpegColorSpace, .ycck)
        let got = try decode(data).pixels
        // The YCC round trip of the CMY channels rounds by at most one level.
        let expected = pillowCMYK(px)
        var worst = 0
        for i in 0..<got.count { worst = max(worst, abs(Int(got[i]) - Int(expected[i]))) }
        XCTAssertLessThanOrEqual(worst, 2, "YCCK decode vs CMYK reference")
    }
}
