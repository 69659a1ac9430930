import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineWeights

/// Bad and hostile inputs: each must be a `WeightError` naming the file (and the
/// global or member involved), never a crash, and nothing is executed.
final class TorchCheckpointSafetyTests: TempDirTestCase {
    override class var tempPrefix: String { "torchckpt-bad" }

    func assertError(_ expr: @autoclosure () throws -> Any, contains parts: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        assertErrorMentions(try expr(), parts, where: { $0 is WeightError }, file: file, line: line)
    }

    /// A zip checkpoint whose data.pkl is `pickle` (no storages).
    func archive(_ pickle: [UInt8], _ name: String) throws -> String {
        try write(ZipBuilder.checkpoint(pickle: pickle, storages: [:]), name)
    }

    func testTruncatedCheckpointsNameTheFile() throws {
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("dit/tiny/state_dict.pt"))))
        for cut in [full.count / 2, full.count - 1, full.count - 30, 100, 4] {
            let p = try write(Array(full.prefix(cut)), "cut\(cut).pt")
            assertError(try WeightsFile.open(p), contains: [p])
            assertError(try TorchCheckpoint(path: p), contains: [p, "truncated"])
        }
        // A file that keeps its central directory but lost bytes in the middle:
        // the members no longer sit where the directory says.
        var holed = full
        holed.removeSubrange(5000..<6000)
        let h = try write(holed, "holed.pt")
        assertError(try TorchCheckpoint(path: h), contains: [h])
    }

    func testDamagedPickleIsACRCError() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("dit/tiny/state_dict.pt"))))
        // The first member is state_dict/data.pkl; its data follows the 30-byte local header, name and extra.
        let nameLen = Int(bytes[26]) | Int(bytes[27]) << 8, extraLen = Int(bytes[28]) | Int(bytes[29]) << 8
        bytes[30 + nameLen + extraLen + 20] ^= 0x01
        let p = try write(bytes, "crc.pt")
        assertError(try TorchCheckpoint(path: p), contains: [p, "CRC-32"])
    }

    func testStorageChecksums() throws {
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0.baseAddress!, count: 9) }, 0xCBF4_3926)
        let fixture = try Fixtures.require("dit/tiny/state_dict.pt")
        try TorchCheckpoint(path: fixture).verifyChecksums()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture)))
        let z = try ZipDirectory(file: fixture, base: bytes, size: bytes.count)
        let member = try XCTUnwrap(z["state_dict/data/3"])
        bytes[member.dataOffset + 1000] ^= 0x40
        let p = try write(bytes, "flipped.pt")
        let c = try TorchCheckpoint(path: p) // storages are not read on opening
        assertError(try c.verifyChecksums(), contains: [p, "state_dict/data/3", "CRC-32"])
        let out = dir + "/out.safetensors"
        assertError(try WeightsConversion.toSafeTensors(input: p, output: out), contains: [p, "CRC-32"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // Checksums recorded as 0 (not computed) are not checked.
        var b = PickleBuilder()
        b.dict([("w", { $0.tensor(storage: "0", numel: 1, shape: [1], stride: [1]) })])
        b.stop()
        let noCRC = try write(ZipBuilder.checkpoint(pickle: b.bytes, storages: ["0": bytesOf([Float(2)])], recordCRC: false), "nocrc.pt")
        let n = try TorchCheckpoint(path: noCRC)
        try n.verifyChecksums()
        XCTAssertEqual(try n.tensor("w").values, [2])
    }

    func testNotACheckpoint() throws {
        let noPickle = try write(ZipBuilder.build([("archive/readme.txt", Array("hello".utf8))]), "nopkl.pt")
        assertError(try WeightsFile.open(noPickle), contains: [noPickle, "data.pkl"])
        let emptyZip = try write(ZipBuilder.build([]), "empty.zip")
        assertError(try WeightsFile.open(emptyZip), contains: [emptyZip, "data.pkl"])

        var g = SystemRandomNumberGenerator()
        let random = try write((0..<4096).map { _ in UInt8.random(in: 0...255, using: &g) }, "random.pt")
        assertError(try WeightsFile.open(random), contains: [random])
        var zipLike: [UInt8] = [0x50, 0x4B, 0x03, 0x04]
        zipLike += (0..<4096).map { _ in UInt8.random(in: 0...255, using: &g) }
        let fakeZip = try write(zipLike, "fake.pt")
        assertError(try WeightsFile.open(fakeZip), contains: [fakeZip, "end-of-central-directory"])

        let legacy = try write([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E, 0x80], "legacy.pt")
        assertError(try WeightsFile.open(legacy), contains: [legacy, "legacy"])
        let tiny = try write([1, 2], "two-bytes.pt")
        assertError(try WeightsFile.open(tiny), contains: [tiny])
        assertError(try WeightsFile.open(dir), contains: [dir, "directory"])
        assertError(try WeightsFile.open(dir + "/absent.pt"), contains: ["absent.pt", "no such file"])

        // A zip that holds a pickle of something other than a dict of tensors.
        var list = PickleBuilder()
        list.op(0x5D)
        list.stop()
        let l = try archive(list.bytes, "list.pt")
        assertError(try TorchCheckpoint(path: l), contains: [l, "list"])
        var empty = PickleBuilder()
        empty.dict([("epoch", { $0.int(3) })])
        empty.stop()
        let e = try archive(empty.bytes, "notensors.pt")
        assertError(try TorchCheckpoint(path: e), contains: [e, "no tensors"])
    }

    func testForbiddenGlobalsAreRefusedBeforeAnythingRuns() throws {
        // Protocol 2 GLOBAL: os.system("touch MARKER")
        let marker = dir + "/pwned"
        var sys = PickleBuilder()
        sys.global("os", "system"); sys.op(0x28); sys.string("touch \(marker)"); sys.op(0x74, 0x52); sys.stop()
        let s = try archive(sys.bytes, "os_system.pt")
        XCTAssertThrowsError(try WeightsFile.open(s)) { e in
            XCTAssertEqual(e as? WeightError, .forbiddenGlobal(file: s, name: "os.system"))
            XCTAssertTrue("\(e)".contains(s) && "\(e)".contains("os.system"), "\(e)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))

        // Protocol 4 STACK_GLOBAL: builtins.eval, inside an otherwise valid state dict.
        var ev = PickleBuilder()
        ev.dict([("w", { b in
            b.op(0x8C, 8); b.bytes += Array("builtins".utf8); b.op(0x8C, 4); b.bytes += Array("eval".utf8); b.op(0x93)
            b.op(0x28); b.string("__import__('os').system('true')"); b.op(0x74, 0x52)
        })])
        ev.stop()
        let e = try archive(ev.bytes, "eval.pt")
        XCTAssertThrowsError(try TorchCheckpoint(path: e)) { err in
            XCTAssertEqual(err as? WeightError, .forbiddenGlobal(file: e, name: "builtins.eval"))
        }

        // Lookalikes of allowed names are refused too.
        for (m, n) in [("torch._utils", "_rebuild_tensor"), ("torch", "load"), ("collections", "defaultdict"),
                       ("numpy.core.multiarray", "_reconstruct"), ("torch.serialization", "load")] {
            var b = PickleBuilder()
            b.global(m, n); b.stop()
            let p = try archive(b.bytes, "g.pt")
            XCTAssertThrowsError(try TorchCheckpoint(path: p)) { err in
                XCTAssertEqual(err as? WeightError, .forbiddenGlobal(file: p, name: "\(m).\(n)"))
            }
        }
        // An allowed class used as a function is no way around the list.
        var ns = PickleBuilder()
        ns.global("argparse", "Namespace"); ns.op(0x29, 0x52); ns.stop()
        let n = try archive(ns.bytes, "ns.pt")
        assertError(try TorchCheckpoint(path: n), contains: [n, "argparse.Namespace"])
    }

    /// Random damage to the zip structures and to the pickle (re-zipped with a
    /// valid CRC so the unpickler sees it): every outcome is a tensor source or a
    /// WeightError, never a trap. Seeded, so a failure reproduces.
    func testRandomDamageNeverCrashes() throws {
        let fixture = try Fixtures.require("dit/tiny/checkpoint.pt")
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture)))
        let z = try ZipDirectory(file: fixture, base: full, size: full.count)
        let pkl = try XCTUnwrap(z["checkpoint/data.pkl"])
        let storage3 = try XCTUnwrap(z["checkpoint/data/3"]).dataOffset
        let rounds = Int(ProcessInfo.processInfo.environment["TORCH_FUZZ_ROUNDS"] ?? "") ?? 120
        let members = z.entries.map { e in (name: e.name, data: Array(full[e.dataOffset..<e.dataOffset + e.size])) }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        var opened = 0, refused = 0
        for round in 0..<rounds {
            var bytes: [UInt8]
            if round % 2 == 0 {
                // Damage the central directory, the end records or a local header.
                bytes = full
                let regions = [full.count - 2000..<full.count, 0..<(pkl.dataOffset), storage3 - 64..<storage3]
                for _ in 0..<(1 + next(4)) {
                    let r = regions[next(regions.count)]
                    bytes[r.lowerBound + next(r.count)] = UInt8(next(256))
                }
            } else {
                // Damage the pickle, then zip it again with a correct checksum.
                var pickle = members[0].data
                for _ in 0..<(1 + next(3)) {
                    switch next(3) {
                    case 0: pickle[next(pickle.count)] = UInt8(next(256))
                    case 1: pickle.removeSubrange(next(pickle.count)...)
                    default: pickle.insert(UInt8(next(256)), at: next(pickle.count))
                    }
                }
                var m = members
                m[0].data = pickle
                bytes = ZipBuilder.build(m)
            }
            let p = try write(bytes, "fuzz.pt")
            do {
                let c = try WeightsFile.open(p)
                for k in c.keys { _ = try c.tensor(k) }
                opened += 1
            } catch let e as WeightError {
                XCTAssertTrue("\(e)".contains(p), "\(e)")
                refused += 1
            }
        }
        XCTAssertEqual(opened + refused, rounds)
        XCTAssertGreaterThan(refused, rounds / 2)
    }

    func testHostilePickleStructuresAreErrors() throws {
        var cases: [(String, [UInt8], String)] = []
        // 1000 lists, each appended into the previous one.
        var deep = PickleBuilder()
        for _ in 0..<1000 { deep.op(0x5D) }
        for _ in 0..<999 { deep.op(0x61) }
        deep.stop()
        cases.append(("deep", deep.bytes, "nested"))
        // 1000 nested tuples.
        var tuples = PickleBuilder()
        tuples.op(0x29)
        for _ in 0..<1000 { tuples.op(0x85) }
        tuples.stop()
        cases.append(("tuples", tuples.bytes, "nested"))
        // A dict that holds itself.
        var cyc = PickleBuilder()
        cyc.op(0x7D, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x68, 0, 0x73, 0x2E)
        cases.append(("cycle", cyc.bytes, "itself"))
        // A list put into a tuple, then changed.
        var late = PickleBuilder()
        late.op(0x5D, 0x71, 0, 0x85, 0x68, 0, 0x4E, 0x61, 0x30, 0x2E)
        cases.append(("late", late.bytes, "modified after"))
        cases.append(("underflow", [0x80, 0x02, 0x52, 0x2E], "underflow"))
        cases.append(("no-stop", [0x80, 0x02, 0x7D], "ends early"))
        cases.append(("bad-memo", [0x80, 0x02, 0x68, 7, 0x2E], "memo"))
        cases.append(("long-string", [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61], "past the end"))
        cases.append(("opcode", [0x80, 0x02, 0x69, 0x2E], "opcode 0x69"))
        cases.append(("two-values", [0x80, 0x02, 0x4E, 0x4E, 0x2E], "STOP"))
        cases.append(("bad-persid", [0x80, 0x02, 0x4E, 0x51, 0x2E], "persistent id"))
        var missing = PickleBuilder()
        missing.dict([("w", { $0.tensor(storage: "9", numel: 1, shape: [1], stride: [1]) })])
        missing.stop()
        cases.append(("missing-storage", missing.bytes, "archive/data/9"))
        for (name, bytes, part) in cases {
            let p = try archive(bytes, name + ".pt")
            assertError(try TorchCheckpoint(path: p), contains: [p, part])
        }
        // A fixture whose data.pkl was cut short (the zip itself intact).
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Fixtures.require("dit/tiny/state_dict.pt"))))
        let z = try ZipDirectory(file: "fixture", base: full, size: full.count)
        XCTAssertNotNil(z["state_dict/data.pkl"])
        let members = z.entries.map { e -> (name: String, data: [UInt8]) in
            let n = e.name.hasSuffix("data.pkl") ? e.size / 2 : e.size
            return (e.name, Array(full[e.dataOffset..<e.dataOffset + n]))
        }
        let p = try write(ZipBuilder.build(members), "halfpkl.pt")
        assertError(try TorchCheckpoint(path: p), contains: [p, "data.pkl", "truncated"])
    }
}
