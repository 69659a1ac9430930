import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineImaging

/// Sample grids, the ImageFolder scan and the `eval crop` library entry point.
final class ImagingOutputTests: XCTestCase {
    // MARK: sample grid (torchvision make_grid + save_image)

    func testSampleGridLayoutAndQuantisation() throws {
        let n = 5, c = 3, h = 2, w = 3
        // Each sample is flat at one value per channel; expected bytes follow
        // save_image: clamp to [-1, 1], (x + 1) / 2, * 255 + 0.5, truncate.
        let levels: [Float] = [-1, 1, 0, 0.5, -0.5, 2, -3]
        let bytes: [Float: UInt8] = [-1: 0, 1: 255, 0: 128, 0.5: 191, -0.5: 64, 2: 255, -3: 0]
        var values = [Float](repeating: 0, count: n * c * h * w)
        func level(_ k: Int, _ ch: Int) -> Float { levels[(k * 3 + ch) % levels.count] }
        for k in 0..<n { for ch in 0..<c { for i in 0..<(h * w) { values[(k * c + ch) * h * w + i] = level(k, ch) } } }
        let grid = try SampleGrid.make(Tensor(shape: [n, c, h, w], values: values), nrow: 4)
        // xmaps = 4, ymaps = 2: width (3 + 2) * 4 + 2, height (2 + 2) * 2 + 2.
        XCTAssertEqual(grid.width, 22)
        XCTAssertEqual(grid.height, 10)
        for y in 0..<grid.height {
            for x in 0..<grid.width {
                let px = grid[x, y]
                let cellX = (x - 2) / 5, cellY = (y - 2) / 4
                let inside = x >= 2 && y >= 2 && (x - 2) % 5 < w && (y - 2) % 4 < h
                let k = cellY * 4 + cellX
                if inside && k < n {
                    XCTAssertEqual([px.0, px.1, px.2], (0..<3).map { bytes[level(k, $0)]! }, "sample \(k) at (\(x), \(y))")
                } else {
                    XCTAssertEqual([px.0, px.1, px.2], [0, 0, 0], "padding at (\(x), \(y))")
                }
            }
        }
    }

    func testSampleGridSingleImageHasNoPaddingAndGrayIsRepeated() throws {
        let one = try SampleGrid.make(Tensor(shape: [1, 1, 2, 2], values: [-1, 0, 1, .nan]), nrow: 4)
        XCTAssertEqual(one.width, 2)
        XCTAssertEqual(one.height, 2)
        XCTAssertEqual(one.pixels, [0, 0, 0, 128, 128, 128, 255, 255, 255, 0, 0, 0])
        XCTAssertThrowsError(try SampleGrid.make(Tensor(shape: [2, 2, 2, 2], values: [Float](repeating: 0, count: 16))))
    }

    func testSampleGridWithoutRangeUsesBatchMinMaxAndSavesPNG() throws {
        let t = Tensor(shape: [2, 3, 1, 1], values: [2, 4, 6, 6, 4, 2])
        let grid = try SampleGrid.make(t, nrow: 2, padding: 1, normalize: true, valueRange: nil)
        XCTAssertEqual(grid.width, 5)
        XCTAssertEqual(grid.height, 3)
        // (v - 2) / 4: 0 -> 0, 0.5 -> 128, 1 -> 255.
        XCTAssertTrue(grid[1, 1] == (0, 128, 255))
        XCTAssertTrue(grid[3, 1] == (255, 128, 0))
        let dir = Fixtures.tempDir("grid")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SampleGrid.save(Tensor(shape: [4, 3, 2, 2], values: (0..<48).map { Float($0) / 24 - 1 }), to: dir + "/sample.png")
        let back = try ImageDecoder.decode(path: dir + "/sample.png")
        XCTAssertEqual(back.width, (2 + 2) * 4 + 2)
        XCTAssertEqual(back.height, 2 + 2 + 2)
    }

    // MARK: pixels to model input

    func testTensorCHWLayoutAndBothReferenceNormalisations() throws {
        let img = try ImageRGB8(width: 2, height: 1, pixels: [0, 128, 255, 1, 2, 3])
        let t = img.tensorCHW()
        XCTAssertEqual(t.shape, [1, 3, 1, 2])
        XCTAssertEqual(t.values, [0, 1, 128, 2, 255, 3].map { ImageRGB8.modelValue(UInt8($0)) })
        XCTAssertEqual(t.values[0], -1)
        XCTAssertEqual(t.values[4], 1)
        for v in 0...255 {
            // torchvision ToTensor + Normalize(0.5, 0.5) in float32 agrees with ADM's division.
            XCTAssertEqual(ImageRGB8.modelValue(UInt8(v)), (Float(v) / 255 - 0.5) / 0.5, "byte \(v)")
        }
    }

    // MARK: ImageFolder

    func testImageFolderOrderMatchesTorchvision() throws {
        let root = Fixtures.tempDir("imagefolder")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        func touch(_ rel: String) throws {
            let p = root + "/" + rel
            try fm.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            fm.createFile(atPath: p, contents: Data([0]))
        }
        // Classes sort by code point: "B" < "a" < "b".
        for f in ["b/2.png", "b/10.png", "a/z.JPG", "a/readme.txt", "a/sub/deeper/0.png", "a/sub c/0.jpeg", "a/sub/1.png",
                  "B/x.webp", "a/y.png"] { try touch(f) }
        fm.createFile(atPath: root + "/stray.png", contents: Data([0])) // files at the top level are not classes
        let folder = try ImageFolder(root: root)
        XCTAssertEqual(folder.classes, ["B", "a", "b"])
        let rel = folder.items.map { (String($0.path.dropFirst(root.count + 1)), $0.label) }
        // sorted(os.walk(...)) orders by directory path: "a/sub" < "a/sub c" < "a/sub/deeper"
        // (' ' sorts before '/'); file names sort as strings ("10.png" < "2.png").
        let expected: [(String, Int)] = [("B/x.webp", 0), ("a/y.png", 1), ("a/z.JPG", 1), ("a/sub/1.png", 1), ("a/sub c/0.jpeg", 1),
                                         ("a/sub/deeper/0.png", 1), ("b/10.png", 2), ("b/2.png", 2)]
        XCTAssertEqual(rel.map(\.0), expected.map(\.0))
        XCTAssertEqual(rel.map(\.1), expected.map(\.1))

        XCTAssertEqual(try ImageFolder(root: root + "/").items, folder.items)

        try touch("c/notes.txt")
        XCTAssertThrowsError(try ImageFolder(root: root)) { e in
            XCTAssertTrue("\(e)".contains("c"), "\(e)")
        }
        XCTAssertThrowsError(try ImageFolder(root: root + "/missing"))
    }

    // MARK: eval crop

    func testCropEvaluationWritesRGBAndCropPerFile() throws {
        let dir = Fixtures.tempDir("eval-crop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = ["chelsea.png", "rocket.jpg"]
        let paths = try files.map { try Fixtures.require("images/adm-crop/\($0)") }
        let out = dir + "/out.safetensors"
        try CropEvaluation.write(images: paths, size: 32, output: out)
        let st = try SafeTensorsFile(path: out)
        XCTAssertEqual(st.metadata["size"], "32")
        for f in files {
            for (key, ref) in [("\(f).rgb", "\(f).rgb.npy"), ("\(f).crop", "\(f).crop32.npy")] {
                let expected = try NPY.read(try Fixtures.require("images/adm-crop/\(ref)"))
                let got = try st.tensor(key)
                XCTAssertEqual(got.shape, expected.shape, key)
                let diffs = zip(got.values, expected.bytes).map { abs($0 - Float($1)) }
                XCTAssertLessThanOrEqual(diffs.max() ?? 99, 1, key)
                XCTAssertGreaterThanOrEqual(Double(diffs.filter { $0 == 0 }.count) / Double(diffs.count), 0.99, key)
            }
        }
        // Two files with the same name would write the same keys.
        let copy = dir + "/chelsea.png"
        try FileManager.default.copyItem(atPath: paths[0], toPath: copy)
        XCTAssertThrowsError(try CropEvaluation.run(images: [paths[0], copy], size: 32))
        XCTAssertThrowsError(try CropEvaluation.run(images: [paths[0]], size: 0))
    }
}
