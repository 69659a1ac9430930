import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineDiT
@testable import PipelineVAE

/// One crafted file per reader fault of issue 14 (each crashed or allocated
/// without bound before): each must now be a clear error naming the file, the
/// member where there is one, and the field.
final class FileReaderHardeningTests: TempDirTestCase {
    override class var tempPrefix: String { "reader-harden" }

    func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// A .npy file: the header NumPy would write for `shape`, then `data` bytes.
    func npy(_ dtype: NPYDType, _ shape: [Int], data: Int = 64) -> [UInt8] {
        [UInt8](NPY.header(dtype: dtype, shape: shape)) + [UInt8](repeating: 1, count: data)
    }

    func testShapesWhoseByteCountOverflowsOrExceedsTheFile() throws {
        let cases: [(NPYDType, [Int])] = [
            (.float64, [1 << 62]),                    // wrapped to 0 bytes, then read past the buffer
            (.int32, [1 << 61, 2]),                   // labels, likewise
            (.uint8, [1 << 32, 1 << 16, 1 << 16, 3]), // overflows Int
            (.uint8, [1 << 20, 1 << 16, 3]),          // 206 GB: fits Int, not the file
        ]
        for (i, (dtype, shape)) in cases.enumerated() {
            let p = try write(npy(dtype, shape), "big\(i).npy")
            assertErrorMentions(try NPY.read(p), [p, "shape"])
            for compressed in [false, true] {
                // The same bytes as an npz member, stored and deflated.
                let z = dir + "/big\(i)-\(compressed).npz"
                let w = try ZipWriter(path: z)
                try w.begin("arr_0.npy", compression: compressed ? .deflate(level: 6) : .stored)
                try npy(dtype, shape).withUnsafeBytes { try w.append($0) }
                try w.end()
                try w.finish()
                assertErrorMentions(try NPZFile(path: z).array("arr_0"), [z, "arr_0.npy", "shape"])
                assertErrorMentions(try NPZFile(path: z).rows("arr_0", batch: 4), [z, "arr_0.npy", "shape"])
            }
        }
        // The writer refuses such a shape too, before writing anything.
        let w = try NPZWriter(path: dir + "/w.npz")
        assertErrorMentions(try w.beginArray("a", dtype: .float64, shape: [1 << 62]), ["a.npy", "shape"])
    }

    func testHeaderLengthsOfZeroOneAndHuge() throws {
        let dict = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n".utf8)
        let preambles: [[UInt8]] = [
            [1, 0, 0, 0], [1, 0, 1, 0],            // version 1, length 0 or 1: a negative count before
            [1, 0, 0xFF, 0xFF],                    // past the end of the file
            [2, 0, 0xFF, 0xFF, 0xFF, 0xFF],        // version 2, 4 GiB
            [3, 0, 0, 0, 0, 0x80],                 // version 3, 2 GiB
            [7, 0, 64, 0],                         // unknown version
        ]
        for (i, pre) in preambles.enumerated() {
            let file = NPY.magic + pre + dict + [0, 0, 0, 0]
            let p = try write(file, "h\(i).npy")
            assertErrorMentions(try NPY.read(p), [p])
            let z = try write(ZipBuilder.build([("x.npy", file)]), "h\(i).npz")
            assertErrorMentions(try NPZFile(path: z).array("x"), [z, "x.npy"])
        }
        let p = try write(NPY.magic + [1, 0, 0, 0], "h0only.npy")
        assertErrorMentions(try NPY.read(p), [p, "header length 0"])
    }

    func testZip64SizesOfTwoToThe63() throws {
        let good = dir + "/z64.npz"
        let w = try NPZWriter(path: good, forceZip64: true)
        try w.add("a", NPYArray(float64: [1, 2, 3], shape: [3]))
        try w.finish()
        XCTAssertEqual(try NPZFile(path: good).array("a").doubles(), [1, 2, 3])
        let valid = try bytes(good)
        let c = try XCTUnwrap(ZipPatch.central(valid, "a.npy"))
        let values = try XCTUnwrap(ZipPatch.zip64Values(valid, central: c))
        // The zip64 extra holds the uncompressed size, compressed size and local header offset.
        for (k, field) in ["uncompressed size", "compressed size", "local header offset"].enumerated() {
            for v: UInt64 in [1 << 63, UInt64.max, 1 << 40] {
                var b = valid
                ZipPatch.put(&b, values + 8 * k, v, bytes: 8)
                let p = try write(b, "z64-\(k)-\(v).npz")
                assertErrorMentions(try NPZFile(path: p).array("a"), [p, "a.npy"])
                // The same directory read through the mapping path (.pt) is as strict.
                assertErrorMentions(try b.withUnsafeBytes { try ZipDirectory(file: p, base: $0.baseAddress!, size: b.count) }, [p])
            }
            _ = field
        }
        // The zip64 end record's entry count, size and offset.
        let eocd = valid.count - 22
        let locator = eocd - 20
        let record = Int(ZipPatch.u32(valid, locator + 8))
        for field in [32, 40, 48] {
            var b = valid
            ZipPatch.put(&b, record + field, 1 << 63, bytes: 8)
            let p = try write(b, "z64-rec-\(field).npz")
            assertErrorMentions(try NPZFile(path: p), [p, "central directory"])
        }
    }

    func testDeflatedMemberDeclaringTwoToThe44BytesFailsBeforeAllocating() throws {
        let good = dir + "/small.npz"
        let w = try NPZWriter(path: good, compressed: true, forceZip64: true)
        try w.add("arr_0", NPYArray(uint8: [UInt8](repeating: 9, count: 48), shape: [4, 4, 3]))
        try w.finish()
        let valid = try bytes(good)
        XCTAssertLessThan(valid.count, 1024)
        let c = try XCTUnwrap(ZipPatch.central(valid, "arr_0.npy"))
        let values = try XCTUnwrap(ZipPatch.zip64Values(valid, central: c))
        var b = valid
        ZipPatch.put(&b, values, 1 << 44, bytes: 8)
        let p = try write(b, "bomb.npz")
        assertErrorMentions(try NPZFile(path: p), [p, "arr_0.npy", "uncompressed size 17592186044416"])
        // A claim within deflate's ratio but beyond the real data: the header and the
        // stream disagree, which is an error once read, never a bigger buffer than the claim.
        for claim: UInt64 in [UInt64(valid.count) * 20, 200] {
            var b2 = valid
            ZipPatch.put(&b2, values, claim, bytes: 8)
            let p2 = try write(b2, "claim\(claim).npz")
            assertErrorMentions(try NPZFile(path: p2).array("arr_0"), [p2, "arr_0.npy"])
        }
    }

    func testDeflatedByteorderMemberIsRefusedBeforeItIsRead() throws {
        var pk = PickleBuilder()
        pk.dict([("w", { $0.tensor(storage: "0", numel: 2, shape: [2], stride: [1]) })])
        pk.stop()
        // byteorder last, right before the central directory.
        let members: [(name: String, data: [UInt8])] = [
            ("archive/data.pkl", pk.bytes), ("archive/data/0", bytesOf([Float(1), 2])),
            ("archive/byteorder", Array("little".utf8)),
        ]
        let valid = ZipBuilder.build(members)
        XCTAssertEqual(try TorchCheckpoint(path: try write(valid, "ok.pt")).tensor("w").values, [1, 2])
        var b = valid
        ZipPatch.setMethod(&b, "archive/byteorder", method: 8, size: 4000)
        let p = try write(b, "deflated-byteorder.pt")
        assertErrorMentions(try TorchCheckpoint(path: p), [p, "archive/byteorder", "compressed"])
        // Every other member the reader touches is checked the same way.
        for name in ["archive/data.pkl", "archive/data/0"] {
            var d = valid
            ZipPatch.setMethod(&d, name, method: 8, size: 4000)
            let q = try write(d, "deflated-\(name.split(separator: "/").last!).pt")
            assertErrorMentions(try TorchCheckpoint(path: q), [q, name, "compressed"])
        }
    }

    func testStridedViewWithAnEmptyDimAndHugeOthers() throws {
        // count is 0, but the row-major check multiplied the other dims (2**80).
        var pk = PickleBuilder()
        pk.dict([("w", { $0.tensor(storage: "0", numel: 1, shape: [0, 1 << 40, 1 << 40], stride: [1, 1, 1]) })])
        pk.stop()
        let p = try write(ZipBuilder.checkpoint(pickle: pk.bytes, storages: ["0": bytesOf([Float(1)])]), "empty-view.pt")
        let c = try TorchCheckpoint(path: p)
        XCTAssertEqual(c.info("w")?.shape, [0, 1 << 40, 1 << 40])
        // A storage whose byte count overflows.
        var big = PickleBuilder()
        big.dict([("w", { $0.tensor(storage: "0", type: "DoubleStorage", numel: 1 << 61, shape: [1], stride: [1]) })])
        big.stop()
        let q = try write(ZipBuilder.checkpoint(pickle: big.bytes, storages: ["0": bytesOf([Double(1)])]), "huge-storage.pt")
        assertErrorMentions(try TorchCheckpoint(path: q), [q, "storage '0'"])
    }

    func testDiTSizesAreBoundedWithAnErrorNamingTheKey() throws {
        let diffusers = #""_class_name": "DiTTransformer2DModel""#
        let cases: [(String, String)] = [
            (#"{"input_size": 536870912, "patch_size": 1}"#, "'input_size' 536870912"),
            ("{\(diffusers), \"sample_size\": 536870912, \"patch_size\": 1}", "'sample_size' 536870912"),
            (#"{"input_size": 30000}"#, "'input_size' 30000"),
            (#"{"input_size": 4096, "patch_size": 2}"#, "'input_size' 4096"),
            (#"{"mlp_ratio": 1e300}"#, "mlp_ratio"),
            (#"{"hidden_size": 999999999, "num_heads": 1}"#, "'hidden_size' 999999999"),
            (#"{"num_classes": 900000000}"#, "'num_classes' 900000000"),
            (#"{"depth": 100000}"#, "'depth' 100000"),
            (#"{"patch_size": 512, "input_size": 1024}"#, "'patch_size' 512"),
            ("{\(diffusers), \"num_attention_heads\": 100000, \"attention_head_dim\": 100000}", "num_attention_heads"),
            ("{\(diffusers), \"norm_eps\": 1e300}", "norm_eps"),
        ]
        for (json, part) in cases {
            assertErrorMentions(try DiTConfig.parse(json: Data(json.utf8), file: "c.json"), ["c.json", part])
        }
        // Configs built in code go through the same checks, and the table builder guards itself.
        var c = DiTConfig(preset: .s2, inputSize: 1 << 29)
        c.patchSize = 1
        assertErrorMentions(try DiT(randomWeights: c, seed: 1), ["input_size"])
        assertErrorMentions(try PositionEmbedding.sincos2D(embedDim: 1152, gridSize: 1 << 29), ["too large"])
        // The largest sizes in use still pass.
        try DiTConfig(preset: .xl2, inputSize: 64).validate(file: "xl2-512")
        try DiTConfig(preset: .s2, inputSize: 256).validate(file: "s2-2048")
    }

    func testVAEConfigSizesAreBounded() throws {
        for (json, key) in [(#"{"block_out_channels": [1073741824]}"#, "block_out_channels"),
                            (#"{"layers_per_block": 100000000}"#, "layers_per_block"),
                            (#"{"latent_channels": 1099511627776}"#, "latent_channels")] {
            let p = try write(Array(json.utf8), "vae-\(key).json")
            assertErrorMentions(try AutoencoderKLConfig.load(path: p), [p, key])
        }
    }

    func testIntegerConversionOfFileValuesNeverTraps() throws {
        // Labels and counts come from files: extreme or NaN values convert, they do not trap.
        let ints = NPYArray(int64: [.max, .min, 1 << 53 + 1], shape: [3])
        XCTAssertEqual(ints.int64s(), [.max, .min, 1 << 53 + 1])
        let floats = NPYArray(float64: [.nan, .infinity, -.infinity, 1e300, -2.7], shape: [5])
        XCTAssertEqual(floats.int64s(), [0, .max, .min, .max, -2])
        let raw = [Float.nan, 3e38]
        XCTAssertEqual(raw.withUnsafeBytes { DTypeConvert.toInt64($0.baseAddress!, dtype: .f32, count: 2) }, [0, .max])
    }

    func testNonRegularFilesAreRefusedWithoutBlocking() throws {
        let fifo = dir + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertErrorMentions(try NPZFile(path: fifo), [fifo, "regular"])
        assertErrorMentions(try NPY.read(fifo), [fifo, "regular"])
        assertErrorMentions(try SafeTensorsFile(path: fifo), [fifo, "regular"])
        assertErrorMentions(try TorchCheckpoint(path: fifo), [fifo, "regular"])
    }
}
