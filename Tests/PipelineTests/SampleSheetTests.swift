import XCTest
@testable import PipelineImaging
@testable import PipelineTraining

/// `dit-worker grid` and the image-folder training set: PNG bytes survive exactly.
final class SampleSheetTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("sample-sheet") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testSheetHoldsEachSampleExactly() throws {
        let shapes = ShapesDataset(seed: 7, size: 12)
        for i in 0..<5 { try PNGWriter.write(shapes.image(i), to: dir + String(format: "/%06d.png", i)) }
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        let sheet = try SampleSheet.make(folder: dir, count: 5, nrow: 2, padding: 2, scale: 3)
        XCTAssertEqual(sheet.width, (2 * (12 + 2) + 2) * 3)
        XCTAssertEqual(sheet.height, (3 * (12 + 2) + 2) * 3)
        for k in 0..<5 {
            let img = shapes.image(k), gx = (k % 2) * 14 + 2, gy = (k / 2) * 14 + 2
            for y in 0..<12 {
                for x in 0..<12 {
                    let p = sheet[(gx + x) * 3 + 2, (gy + y) * 3 + 1]
                    XCTAssertTrue(p == img[x, y], "sample \(k) pixel (\(x), \(y))")
                }
            }
        }
        XCTAssertTrue(sheet[0, 0] == (0, 0, 0), "padding is black")
        XCTAssertThrowsError(try SampleSheet.make(folder: dir, count: 6, nrow: 2))
        XCTAssertThrowsError(try SampleSheet.make(folder: dir + "/missing", count: 1, nrow: 2))
    }

    func testImageFolderTrainingSetHoldsTheDecodedPixels() throws {
        let shapes = ShapesDataset(seed: 8, size: 16)
        try shapes.write(count: 6, to: dir)
        let data = try TrainingImages(imageFolder: dir, size: 16)
        XCTAssertEqual(data.count, 6)
        // ImageFolder order: class folders sorted, then file names.
        let order = (0..<6).sorted { (shapes.label(of: $0), $0) < (shapes.label(of: $1), $1) }
        let batch = data.batch(Array(0..<6))
        for (row, i) in order.enumerated() {
            XCTAssertEqual(data.labels[row], shapes.label(of: i))
            let want = shapes.image(i).tensorCHW().values
            XCTAssertEqual(Array(batch.values[row * want.count..<(row + 1) * want.count]), want, "image \(i)")
        }
    }
}
