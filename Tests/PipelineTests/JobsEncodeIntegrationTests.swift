import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineJobs

/// The `encode` kind through real processes, with the tiny VAE fixture.
final class JobsEncodeIntegrationTests: ProcessTestCase {
    /// (c) A folder with corrupt images: every good image is encoded, every bad one recorded;
    /// one and two workers give the same bytes.
    func testCorruptImagesAreRecordedAndGoodOnesEncoded() throws {
        let vae = try Fixtures.require("vae/tiny")
        let folder = dir + "/images"
        var bad: [String] = []
        for (c, cls) in ["cat", "dog"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<3 {
                let pixels = (0..<(20 * 24 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (7 + i) &+ c * 50) }
                try PNGWriter.write(try ImageRGB8(width: 24, height: 20, pixels: pixels), to: "\(folder)/\(cls)/\(i).png")
            }
        }
        // Garbage with an image name, a truncated PNG, a zero-byte JPEG.
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(folder)/cat/2b.png"))
        let png = try Data(contentsOf: URL(fileURLWithPath: "\(folder)/dog/1.png"))
        try png.prefix(60).write(to: URL(fileURLWithPath: "\(folder)/dog/1b.png"))
        try Data().write(to: URL(fileURLWithPath: "\(folder)/dog/9.jpg"))
        bad = ["cat/2b.png", "dog/1b.png", "dog/9.jpg"]
        let scan = try ImageFolder(root: folder)
        XCTAssertEqual(scan.items.count, 9)
        let badIndices = bad.map { b in scan.items.firstIndex { $0.path.hasSuffix(b) }! }.sorted()

        var trees: [[String: Data]] = []
        for workers in [1, 2] {
            let out = dir + "/enc\(workers)", ledger = dir + "/l\(workers).sqlite"
            let (status, log) = try runToEnd("dit-coordinator", [
                "run", "encode", "--folder", folder, "--vae", vae, "--out", out, "--image-size", "16", "--flip",
                "--images-per-shard", "4", "--batch", "3", "--layout", "fast-dit", "--seed", "5",
                "--workers", "\(workers)", "--ledger", ledger])
            XCTAssertEqual(status, 0, log)
            XCTAssertTrue(log.contains("item errors: 3"), log)
            try assertExactlyOnce(ledger)
            let l = try Ledger(path: ledger)
            XCTAssertEqual(try l.itemErrors(jobId: 1).map(\.item), badIndices)
            XCTAssertEqual(Set(try l.itemErrors(jobId: 1).map(\.path)), Set(bad))
            trees.append(try tree(out))
        }
        XCTAssertEqual(trees[0], trees[1])
        // Every good image is in exactly one shard, with its label.
        var seen: [Int64] = []
        for i in 0..<3 {
            let f = try SafeTensorsFile(path: dir + String(format: "/enc1/shards/shard-%06d.safetensors", i))
            let idx = try f.int64s("index")
            let labels = try f.int64s("label")
            seen += idx
            for (k, j) in idx.enumerated() { XCTAssertEqual(Int(labels[k]), scan.items[Int(j)].label) }
            if !idx.isEmpty {
                XCTAssertEqual(try f.tensor("latent").shape, [idx.count, 4, 8, 8])
                XCTAssertEqual(try f.tensor("latent_flip").shape, [idx.count, 4, 8, 8])
            }
        }
        XCTAssertEqual(seen, (0..<9).filter { !badIndices.contains($0) }.map(Int64.init))
        XCTAssertNotNil(trees[0]["features/0.npy"])
        XCTAssertNil(trees[0]["features/\(badIndices[0]).npy"])
        XCTAssertEqual(trees[0]["classes.txt"], Data("cat\ndog\n".utf8))
    }
}
