import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineWeights

final class TorchCheckpointTests: TempDirTestCase {
    override class var tempPrefix: String { "torchckpt" }

    /// Every tensor of `a` has the dtype, shape and bytes of the same key in `b`, and the key sets agree.
    func assertBitEqual(_ a: TensorSource, _ b: TensorSource, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(a.keys), Set(b.keys), "key sets", file: file, line: line)
        XCTAssertFalse(a.keys.isEmpty, file: file, line: line)
        for k in b.keys {
            guard let ia = a.info(k), let ib = b.info(k) else { XCTFail("missing \(k)", file: file, line: line); continue }
            XCTAssertEqual(ia, ib, k, file: file, line: line)
            let n = ib.count * ib.dtype.size
            let same = try a.withRawBytes(k) { pa in try b.withRawBytes(k) { pb in memcmp(pa, pb, n) == 0 } }
            XCTAssertTrue(same, "\(k): bytes differ", file: file, line: line)
        }
    }

    func assertError(_ expr: @autoclosure () throws -> Any, contains parts: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try expr(), file: file, line: line) { e in
            XCTAssertTrue(e is WeightError, "\(e)", file: file, line: line)
            for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(e)' lacks '\(p)'", file: file, line: line) }
        }
    }

    // MARK: fixtures

    func testStateDictMatchesSafetensorsBitForBit() throws {
        let pt = try Fixtures.require("dit/tiny/state_dict.pt")
        let ref = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let src = try WeightsFile.open(pt)
        let ckpt = try XCTUnwrap(src as? TorchCheckpoint)
        XCTAssertNil(ckpt.servedEntry)
        XCTAssertEqual(ckpt.skippedEntries, [])
        XCTAssertEqual(ckpt.keys.first, "pos_embed") // state-dict order is kept
        try assertBitEqual(src, ref)
        // Float32 access through the TensorSource extension.
        XCTAssertEqual(try src.tensor("x_embedder.proj.weight").values, try ref.tensor("x_embedder.proj.weight").values)
    }

    func testTrainCheckpointServesEMAByDefaultAndModelOnRequest() throws {
        let pt = try Fixtures.require("dit/tiny/checkpoint.pt")
        let ref = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/weights.safetensors"))
        let ema = try XCTUnwrap(try WeightsFile.open(pt) as? TorchCheckpoint)
        XCTAssertEqual(ema.servedEntry, "ema")
        XCTAssertEqual(ema.skippedEntries, ["model", "opt", "args"])
        try assertBitEqual(ema, ref)
        // In this fixture `ema` is the very same pickled dict as `model` (a BINGET of
        // it), so both picks hold the reference weights; the pick itself is checked
        // on a hand-made checkpoint with distinct weights below.
        let model = try XCTUnwrap(try WeightsFile.open(pt, pick: .model) as? TorchCheckpoint)
        XCTAssertEqual(model.servedEntry, "model")
        XCTAssertEqual(model.skippedEntries, ["ema", "opt", "args"])
        try assertBitEqual(model, ref)
    }

    func testPickChoosesBetweenDistinctEMAAndModel() throws {
        var p = PickleBuilder()
        p.dict([
            ("model", { $0.dict([("w", { $0.tensor(storage: "0", numel: 2, shape: [2], stride: [1]) })]) }),
            ("ema", { $0.dict([("w", { $0.tensor(storage: "1", numel: 2, shape: [2], stride: [1]) })]) }),
            ("opt", { $0.op(0x7D) }),
            ("args", { b in
                b.global("argparse", "Namespace"); b.op(0x29, 0x81) // Namespace.__new__
                b.dict([("model", { $0.string("DiT-XL/2") }), ("epochs", { $0.int(1400) })]); b.op(0x62) // BUILD
            }),
        ])
        p.stop()
        let path = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: ["0": bytesOf([Float(1), 2]), "1": bytesOf([Float(3), 4])]), "train.pt")
        let ema = try TorchCheckpoint(path: path)
        XCTAssertEqual(ema.servedEntry, "ema")
        XCTAssertEqual(try ema.tensor("w").values, [3, 4])
        let model = try TorchCheckpoint(path: path, pick: .model)
        XCTAssertEqual(try model.tensor("w").values, [1, 2])

        // Only `model`: ema falls back to it. Only `ema`: asking for model is an error.
        var q = PickleBuilder()
        q.dict([("model", { $0.dict([("w", { $0.tensor(storage: "0", numel: 2, shape: [2], stride: [1]) })]) }), ("epoch", { $0.int(3) })])
        q.stop()
        let onlyModel = try write(ZipBuilder.checkpoint(pickle: q.bytes, storages: ["0": bytesOf([Float(1), 2])]), "m.pt")
        let c = try TorchCheckpoint(path: onlyModel)
        XCTAssertEqual(c.servedEntry, "model")
        XCTAssertEqual(c.skippedEntries, ["epoch"])
        var r = PickleBuilder()
        r.dict([("ema", { $0.dict([("w", { $0.tensor(storage: "0", numel: 2, shape: [2], stride: [1]) })]) })])
        r.stop()
        let onlyEMA = try write(ZipBuilder.checkpoint(pickle: r.bytes, storages: ["0": bytesOf([Float(1), 2])]), "e.pt")
        assertError(try TorchCheckpoint(path: onlyEMA, pick: .model), contains: [onlyEMA, "'model'"])
    }

    // MARK: layouts, dtypes, strides

    func testStateDictKeyNestingDtypesAndStrides() throws {
        let half: [UInt16] = [Float16(1.5), Float16(-2), Float16(0.25)].map(\.bitPattern)
        let bf: [UInt16] = [Float(3.0), Float(-0.5)].map { UInt16($0.bitPattern >> 16) }
        var p = PickleBuilder()
        p.dict([("state_dict", { $0.dict([
            // A transposed 2x3 view of storage [0, 1, 2, 3, 4, 5] (a 3x2 matrix): stride (1, 2).
            ("t", { $0.tensor(storage: "f", numel: 6, shape: [2, 3], stride: [1, 2]) }),
            // A slice at an offset: elements 4, 5.
            ("slice", { $0.tensor(storage: "f", numel: 6, offset: 4, shape: [2], stride: [1]) }),
            // Broadcast (stride 0) row.
            ("bcast", { $0.tensor(storage: "f", numel: 6, offset: 1, shape: [2, 2], stride: [0, 1]) }),
            ("h", { $0.tensor(storage: "h", type: "HalfStorage", numel: 3, shape: [3], stride: [1]) }),
            ("b", { $0.tensor(storage: "b", type: "BFloat16Storage", numel: 2, shape: [2], stride: [1]) }),
            ("steps", { $0.tensor(storage: "l", type: "LongStorage", numel: 1, shape: [], stride: []) }),
            ("sub", { $0.dict([("k", { $0.tensor(storage: "f", numel: 6, shape: [1], stride: [1]) })]) }),
        ]) }), ("epoch", { $0.int(7) })])
        p.stop()
        let storages = ["f": bytesOf((0..<6).map(Float.init)), "h": bytesOf(half), "b": bytesOf(bf),
                        "l": bytesOf([Int64(1) << 40])]
        let path = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: storages, archive: "some_name"), "sd.pth")
        let c = try XCTUnwrap(try WeightsFile.open(path) as? TorchCheckpoint)
        XCTAssertEqual(c.servedEntry, "state_dict")
        XCTAssertEqual(c.keys, ["t", "slice", "bcast", "h", "b", "steps", "sub.k"])
        XCTAssertEqual(try c.tensor("t").values, [0, 2, 4, 1, 3, 5])
        XCTAssertEqual(try c.tensor("slice").values, [4, 5])
        XCTAssertEqual(try c.tensor("bcast").values, [1, 2, 1, 2])
        XCTAssertEqual(c.info("h"), TensorInfo(dtype: .f16, shape: [3]))
        XCTAssertEqual(try c.tensor("h").values, [1.5, -2, 0.25])
        XCTAssertEqual(try c.tensor("b").values, [3, -0.5])
        XCTAssertEqual(c.info("steps"), TensorInfo(dtype: .i64, shape: []))
        XCTAssertEqual(try c.int64s("steps"), [1 << 40])
        XCTAssertEqual(try c.tensor("sub.k").values, [0])

        // Zip64 records (checkpoints over 4 GiB) give the same archive.
        let path64 = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: storages, zip64: true), "sd64.pt")
        let c64 = try TorchCheckpoint(path: path64)
        XCTAssertEqual(c64.keys, c.keys)
        XCTAssertEqual(try c64.tensor("t").values, [0, 2, 4, 1, 3, 5])
        XCTAssertEqual(try c64.int64s("steps"), [1 << 40])
    }

    /// `model.state_dict()` is an OrderedDict pickled as REDUCE(OrderedDict, ()),
    /// SETITEMS, then BUILD with its `_metadata` attribute; tensors may come as Parameters.
    func testOrderedDictWithMetadataAndParameters() throws {
        var p = PickleBuilder()
        p.global("collections", "OrderedDict"); p.op(0x29, 0x52, 0x71, 0) // OrderedDict(), memo 0
        p.op(0x28)
        p.string("w"); p.tensor(storage: "0", numel: 2, shape: [2], stride: [1])
        p.string("p")
        p.global("torch._utils", "_rebuild_parameter"); p.op(0x28)
        p.tensor(storage: "0", numel: 2, offset: 1, shape: [1], stride: [1]); p.op(0x88)
        p.global("collections", "OrderedDict"); p.op(0x29, 0x52, 0x74, 0x52) // (t, True, OrderedDict()) REDUCE
        p.op(0x75) // SETITEMS
        p.dict([("_metadata", { b in
            b.global("collections", "OrderedDict"); b.op(0x29, 0x52)
            b.op(0x28); b.string(""); b.dict([("version", { $0.int(1) })]); b.op(0x75)
        })])
        p.op(0x62) // BUILD
        p.stop()
        let path = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: ["0": bytesOf([Float(5), 6])]), "od.pt")
        let c = try TorchCheckpoint(path: path)
        XCTAssertEqual(c.keys, ["w", "p"])
        XCTAssertEqual(try c.tensor("w").values, [5, 6])
        XCTAssertEqual(try c.tensor("p").values, [6])
    }

    /// The pre-1.6 format (pytorch-fid's FID Inception weights are in it).
    func testLegacyFormat() throws {
        var p = PickleBuilder()
        p.global("collections", "OrderedDict"); p.op(0x29, 0x52, 0x28)
        p.string("conv.weight"); p.tensor(storage: "94", numel: 6, shape: [3, 2], stride: [1, 3], legacy: true)
        p.string("bn.running_mean"); p.tensor(storage: "95", type: "HalfStorage", numel: 2, shape: [2], stride: [1], legacy: true)
        p.string("bn.num_batches_tracked"); p.tensor(storage: "96", type: "LongStorage", numel: 1, shape: [], stride: [], legacy: true)
        p.op(0x75)
        p.stop()
        let storages = [("94", 6, bytesOf((0..<6).map(Float.init))), ("95", 2, bytesOf([Float16(0.5), Float16(-1)].map(\.bitPattern))),
                        ("96", 1, bytesOf([Int64(12)]))]
        let bytes = LegacyTorchBuilder.build(pickle: p.bytes, storages: storages)
        let path = try write(bytes, "legacy.pth")
        XCTAssertEqual(try WeightsFile.format(of: path), .torchLegacy)
        let c = try XCTUnwrap(try WeightsFile.open(path) as? TorchCheckpoint)
        XCTAssertEqual(c.keys, ["conv.weight", "bn.running_mean", "bn.num_batches_tracked"])
        XCTAssertEqual(try c.tensor("conv.weight").values, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(try c.tensor("bn.running_mean").values, [0.5, -1])
        XCTAssertEqual(try c.int64s("bn.num_batches_tracked"), [12])
        try c.verifyChecksums() // nothing to check in this format

        let out = dir + "/legacy.safetensors"
        try WeightsConversion.toSafeTensors(input: path, output: out)
        XCTAssertEqual(try SafeTensorsFile(path: out).tensor("conv.weight").values, [0, 3, 1, 4, 2, 5])

        for cut in [bytes.count - 1, bytes.count - 30, 200, 20] {
            let t = try write(Array(bytes.prefix(cut)), "cut\(cut).pth")
            assertError(try WeightsFile.open(t), contains: [t, "legacy", "truncated"])
        }
        var wrong = storages
        wrong[2].1 = 2
        let w = try write(LegacyTorchBuilder.build(pickle: p.bytes, storages: wrong), "count.pth")
        assertError(try TorchCheckpoint(path: w), contains: [w, "storage '96' records 2 elements"])
        let missing = try write(LegacyTorchBuilder.build(pickle: p.bytes, storages: Array(storages.prefix(2))), "missing.pth")
        assertError(try TorchCheckpoint(path: missing), contains: [missing, "storage '96' has no data"])
        var evil = PickleBuilder()
        evil.global("posix", "system"); evil.op(0x28); evil.string("true"); evil.op(0x74, 0x52); evil.stop()
        let e = try write(LegacyTorchBuilder.build(pickle: evil.bytes, storages: []), "evil.pth")
        XCTAssertThrowsError(try TorchCheckpoint(path: e)) { err in
            XCTAssertEqual(err as? WeightError, .forbiddenGlobal(file: e, name: "posix.system"))
        }
    }

    /// Pages of large tensors are dropped from the resident set after each read;
    /// reading again must fault the same bytes back in.
    func testLargeTensorsReadAgainAfterTheirPagesAreReleased() throws {
        let n = 700_000
        let values = (0..<n).map { Float($0 % 1000) - 500 }
        var p = PickleBuilder()
        p.dict([("big", { $0.tensor(storage: "0", numel: n, shape: [n / 1000, 1000], stride: [1000, 1]) }),
                ("bigT", { $0.tensor(storage: "0", numel: n, shape: [1000, n / 1000], stride: [1, 1000]) })])
        p.stop()
        let path = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: ["0": bytesOf(values)]), "big.pt")
        let c = try TorchCheckpoint(path: path)
        XCTAssertEqual(try c.tensor("big").values, values)
        try c.verifyChecksums()
        XCTAssertEqual(try c.tensor("big").values, values)
        let t = try c.tensor("bigT")
        XCTAssertEqual(t.values[1], values[1000])
        XCTAssertEqual(try c.tensor("big").values, values)
    }

    func testTensorOutsideItsStorageIsAnError() throws {
        var p = PickleBuilder()
        p.dict([("w", { $0.tensor(storage: "0", numel: 4, shape: [2, 3], stride: [3, 1]) })])
        p.stop()
        let path = try write(ZipBuilder.checkpoint(pickle: p.bytes, storages: ["0": bytesOf([Float](repeating: 0, count: 4))]), "oob.pt")
        assertError(try TorchCheckpoint(path: path), contains: [path, "4-element storage"])
        // The storage member is shorter than its declared element count.
        var q = PickleBuilder()
        q.dict([("w", { $0.tensor(storage: "0", numel: 8, shape: [8], stride: [1]) })])
        q.stop()
        let short = try write(ZipBuilder.checkpoint(pickle: q.bytes, storages: ["0": bytesOf([Float](repeating: 0, count: 4))]), "short.pt")
        assertError(try TorchCheckpoint(path: short), contains: [short, "data/0", "fewer than 8 elements"])
        // A stride-0 view that would materialise terabytes.
        var r = PickleBuilder()
        r.dict([("w", { $0.tensor(storage: "0", numel: 4, shape: [1 << 20, 1 << 20], stride: [0, 0]) })])
        r.stop()
        let huge = try write(ZipBuilder.checkpoint(pickle: r.bytes, storages: ["0": bytesOf([Float](repeating: 0, count: 4))]), "huge.pt")
        assertError(try TorchCheckpoint(path: huge), contains: [huge, "expands"])
    }
}
