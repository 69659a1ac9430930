import Foundation
import XCTest
@testable import PipelineFiles

/// Hand-made safetensors files with hostile or inconsistent headers: each is a
/// `WeightError` naming the file (and the entry), never a trap.
final class SafeTensorsRobustnessTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("st-robust") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// 8-byte length (or `length` when given), the header text, then `data` bytes.
    func file(_ header: String, data: Int, length: UInt64? = nil, _ name: String = "t.safetensors") throws -> String {
        var b: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { b += $0 }
        b += Array(header.utf8)
        b += [UInt8](repeating: 7, count: data)
        let p = dir + "/" + name
        try Data(b).write(to: URL(fileURLWithPath: p))
        return p
    }

    func assertError(_ path: String, _ parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafeTensorsFile(path: path), file: file, line: line) { e in
            XCTAssertTrue(e is WeightError, "\(e)", file: file, line: line)
            for p in [path] + parts { XCTAssertTrue("\(e)".contains(p), "'\(e)' lacks '\(p)'", file: file, line: line) }
        }
    }

    func testHeaderLengths() throws {
        let h = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        XCTAssertEqual(try SafeTensorsFile(path: try file(h, data: 4)).keys, ["a"])
        for len: UInt64 in [0, UInt64(Int.max) + 5, .max, 1 << 40, UInt64(h.utf8.count) + 5] {
            assertError(try file(h, data: 4, length: len), ["header length"])
        }
        assertError(try file("[1, 2, 3]", data: 0), ["JSON object"])
        assertError(try file("{\"a\": ", data: 0), ["JSON object"])
    }

    func testOffsetsMustTileTheDataExactly() throws {
        func entry(_ n: String, _ shape: String, _ s: Int, _ e: Int, _ dt: String = "F32") -> String {
            "\"\(n)\":{\"dtype\":\"\(dt)\",\"shape\":\(shape),\"data_offsets\":[\(s),\(e)]}"
        }
        // Valid: two tensors and an empty one, listed out of order.
        let ok = try SafeTensorsFile(path: try file("{\(entry("b", "[1]", 4, 8)),\(entry("a", "[1]", 0, 4)),\(entry("z", "[0,3]", 8, 8))}", data: 8))
        XCTAssertEqual(ok.keys, ["a", "b", "z"])
        XCTAssertEqual(try ok.tensor("z").shape, [0, 3])

        assertError(try file("{\(entry("a", "[2]", 0, 8)),\(entry("b", "[2]", 4, 12))}", data: 12), ["'b'", "overlaps"])
        assertError(try file("{\(entry("a", "[2]", 0, 8)),\(entry("b", "[2]", 0, 8))}", data: 8), ["overlaps"])
        assertError(try file("{\(entry("a", "[1]", 0, 4)),\(entry("b", "[1]", 8, 12))}", data: 12), ["gap of 4 bytes", "'b'"])
        assertError(try file("{\(entry("a", "[1]", 0, 4))}", data: 9), ["5 bytes after the last tensor"])
        assertError(try file("{\(entry("a", "[2]", 0, 8))}", data: 4), ["'a'", "past the end"])
        assertError(try file("{\(entry("a", "[2]", 8, 0))}", data: 8), ["'a'", "offsets"])
        assertError(try file("{\(entry("a", "[2]", 0, 4))}", data: 4), ["'a'", "offsets"])
        assertError(try file("{\(entry("a", "[2]", -8, 0))}", data: 8), ["'a'", "bad shape or offsets"])
        assertError(try file("{\(entry("a", "[2.5]", 0, 10))}", data: 10), ["'a'", "bad shape"])
        assertError(try file("{\(entry("a", "[-1]", 0, 4))}", data: 4), ["'a'", "bad shape"])
        assertError(try file("{\(entry("a", "[1099511627776,1099511627776,1099511627776]", 0, 4))}", data: 4), ["'a'", "too large"])
        assertError(try file("{\(entry("a", "[4611686018427387904]", 0, 4))}", data: 4), ["'a'", "too large"])
        assertError(try file("{\(entry("a", "[1]", 0, 9_000_000_000_000_000_000))}", data: 4), ["'a'"])
        assertError(try file("{\(entry("a", "[1]", 0, 1, "F8_E4M3"))}", data: 1), ["'a'", "F8_E4M3"])
        assertError(try file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", data: 4), ["'a'", "data_offsets"])
    }

    /// Random damage to the header of a real file: a tensor source or a WeightError, never a trap.
    func testRandomHeaderDamageNeverCrashes() throws {
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("dit/tiny/weights.safetensors"))))
        let headerEnd = 8 + Int(full[0]) + Int(full[1]) << 8 + Int(full[2]) << 16
        var state: UInt64 = 12345
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var refused = 0
        for _ in 0..<150 {
            var b = full
            for _ in 0..<(1 + next(3)) { b[next(headerEnd)] = [UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "]"), 0xFF, UInt8(next(256))][next(5)] }
            let p = dir + "/fuzz.safetensors"
            try Data(b).write(to: URL(fileURLWithPath: p))
            do {
                let f = try SafeTensorsFile(path: p)
                for k in f.keys { _ = try f.tensor(k) }
            } catch let e as WeightError {
                XCTAssertTrue("\(e)".contains(p), "\(e)")
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 75)
    }
}
