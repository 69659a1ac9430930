import XCTest
@testable import PipelineImaging
@testable import PipelineTraining

final class ShapesDatasetTests: XCTestCase {
    func testImagesDependOnlyOnSeedAndIndex() {
        let a = ShapesDataset(seed: 3), b = ShapesDataset(seed: 3), c = ShapesDataset(seed: 4)
        XCTAssertEqual(a.image(17), b.image(17))
        XCTAssertNotEqual(a.image(17), c.image(17))
        XCTAssertNotEqual(a.image(17), a.image(21))
        XCTAssertEqual((0..<8).map(a.label(of:)), [0, 1, 2, 3, 0, 1, 2, 3])
    }

    func testShapesCoverDifferentAreas() {
        // A cross covers clearly less of its bounding circle than a circle does.
        let ds = ShapesDataset(seed: 0, size: 32)
        func coverage(_ img: ImageRGB8) -> Int {
            // Pixels far from the background colour (corner pixel).
            let bg = img[0, 0]
            var n = 0
            for y in 0..<img.height { for x in 0..<img.width {
                let p = img[x, y]
                if abs(Int(p.0) - Int(bg.0)) + abs(Int(p.1) - Int(bg.1)) + abs(Int(p.2) - Int(bg.2)) > 60 { n += 1 }
            } }
            return n
        }
        XCTAssertGreaterThan(coverage(ds.image(0)), 40)   // circle
        XCTAssertGreaterThan(coverage(ds.image(1)), 20)   // cross
    }

    func testWritesImageFolderLayout() throws {
        let dir = Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ShapesDataset(seed: 1).write(count: 10, to: dir)
        let folder = try ImageFolder(root: dir)
        XCTAssertEqual(folder.classes, ["circle", "cross", "square", "triangle"])
        XCTAssertEqual(folder.items.count, 10)
        for item in folder.items {
            let index = Int(URL(fileURLWithPath: item.path).deletingPathExtension().lastPathComponent)!
            XCTAssertEqual(item.label, ShapesDataset(seed: 1).label(of: index))
        }
        let decoded = try ImageDecoder.decode(path: folder.items[0].path)
        XCTAssertEqual(decoded, ShapesDataset(seed: 1).image(0))
    }
}
