import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineImaging

/// Mutates small valid .npy, .npz (stored, deflated, zip64), .safetensors, .pt,
/// PNG and JPEG files (bit flips, truncations, size fields overwritten with
/// hostile values, inserted/deleted bytes, hostile .npy shapes) and reads each
/// one fully: every read either succeeds or throws; no trap, and nothing read
/// is larger than its file could hold. Seeded, so a failure reproduces;
/// `FILE_FUZZ_CASES` sets the cases per seed file (default 100, 1,000 in all).
/// Run once under a debug build (overflow traps) and AddressSanitizer:
/// `swift test --filter FileReaderFuzzTests [-Xswiftc -sanitize=address]`.
final class FileReaderFuzzTests: TempDirTestCase {
    override class var tempPrefix: String { "reader-fuzz" }

    enum Format { case npy, npz, safetensors, pt, image }

    /// Interesting values for size and offset fields.
    static let hostile: [UInt64] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                                    1 << 32, 1 << 40, 1 << 44, 1 << 61, 1 << 62, 1 << 63, .max, .max - 1]

    func seeds() throws -> [(String, Format, [UInt8])] {
        var out: [(String, Format, [UInt8])] = []
        out.append(("f32.npy", .npy, [UInt8](NPY.encode(NPYArray(Tensor(shape: [3, 4], values: (0..<12).map(Float.init)))))))
        out.append(("u8.npy", .npy, [UInt8](NPY.encode(NPYArray(uint8: (0..<18).map(UInt8.init), shape: [2, 3, 3])))))
        for (name, compressed, zip64) in [("stored.npz", false, false), ("deflate.npz", true, false), ("z64.npz", false, true), ("z64d.npz", true, true)] {
            let p = dir + "/" + name
            let w = try NPZWriter(path: p, compressed: compressed, forceZip64: zip64)
            try w.add("mu", NPYArray(float64: [1.5, -2, 3], shape: [3]))
            try w.add("arr_0", NPYArray(uint8: (0..<60).map { UInt8($0 * 7 & 0xFF) }, shape: [5, 2, 2, 3]))
            try w.add("arr_1", NPYArray(int64: [3, 1, 4, 1, 5], shape: [5]))
            try w.finish()
            out.append((name, .npz, [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))))
        }
        var st = SafeTensorsWriter(metadata: ["format": "pt"])
        st.add("a", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        st.add("b", int64: [7, 8], shape: [2])
        out.append(("t.safetensors", .safetensors, [UInt8](try st.encoded())))
        var pk = PickleBuilder()
        pk.dict([("w", { $0.tensor(storage: "0", numel: 6, shape: [2, 3], stride: [3, 1]) }),
                 ("t", { $0.tensor(storage: "0", numel: 6, offset: 1, shape: [2, 2], stride: [1, 2]) }),
                 ("h", { $0.tensor(storage: "1", type: "HalfStorage", numel: 2, shape: [2], stride: [1]) })])
        pk.stop()
        out.append(("c.pt", .pt, ZipBuilder.checkpoint(pickle: pk.bytes, storages: [
            "0": bytesOf((0..<6).map(Float.init)), "1": bytesOf([Float16(1), Float16(2)])])))
        let image = try ImageRGB8(width: 7, height: 5, pixels: (0..<105).map { UInt8($0 * 5 & 0xFF) })
        out.append(("i.png", .image, [UInt8](try PNGWriter.encode(image))))
        out.append(("i.jpg", .image, [UInt8](try JPEGWriter.encode(image.pixels, width: 7, height: 5, components: 3))))
        return out
    }

    /// Reads everything the file holds; returns the bytes produced.
    func readAll(_ path: String, _ format: Format) throws -> Int {
        switch format {
        case .npy:
            return try NPY.read(path).data.count
        case .npz:
            let z = try NPZFile(path: path)
            var n = 0
            for name in z.names {
                n += try z.array(name).data.count
                if let h = try? z.header(name), !h.shape.isEmpty {
                    var it = try z.rows(name, batch: 2)
                    while let b = try it.next() { n += b.data.count }
                }
            }
            return n
        case .safetensors:
            let s = try SafeTensorsFile(path: path)
            return try s.keys.reduce(0) { $0 + (try s.tensor($1).count) * 4 }
        case .pt:
            let c = try TorchCheckpoint(path: path)
            try c.verifyChecksums()
            return try c.keys.reduce(0) { $0 + (try c.tensor($1).count) * 4 }
        case .image:
            return try ImageDecoder.decode(path: path).pixels.count
        }
    }

    func mutate(_ valid: [UInt8], _ format: Format, _ rng: inout SplitMix64) -> [UInt8] {
        func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
        var b = valid
        for _ in 0..<(1 + below(3)) {
            guard !b.isEmpty else { break }
            switch below(6) {
            case 0: // bit flips
                for _ in 0..<(1 + below(8)) { b[below(b.count)] ^= UInt8(1 << below(8)) }
            case 1: // truncation
                b.removeSubrange(below(b.count)...)
            case 2, 3: // a size field: a hostile value, 2/4/8 bytes wide, anywhere or in the file's tail (zip directories)
                let width = [2, 4, 8][below(3)]
                guard b.count > width else { break }
                let lo = below(2) == 0 ? 0 : max(0, b.count - 200)
                let at = lo + below(b.count - width - lo + 1)
                let v = Self.hostile[below(Self.hostile.count)]
                for k in 0..<width { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 4: // bytes inserted or deleted
                let at = below(b.count)
                if below(2) == 0 {
                    b.insert(contentsOf: (0..<(1 + below(16))).map { _ in UInt8(below(256)) }, at: at)
                } else {
                    b.removeSubrange(at..<min(b.count, at + 1 + below(16)))
                }
            default: // a hostile .npy shape in the header text (only where there is one)
                guard format == .npy else { b[below(b.count)] = UInt8(below(256)); break }
                let dims = (0..<(1 + below(4))).map { _ in below(2) == 0 ? Int(Self.hostile[below(Self.hostile.count)] >> 1) : below(10) }
                let dtype = NPYDType.allCases[below(NPYDType.allCases.count)]
                b = [UInt8](NPY.header(dtype: dtype, shape: dims)) + b.suffix(max(0, b.count - 128))
            }
        }
        return b
    }

    func testMutatedFilesReadOrThrowNeverCrash() throws {
        let perSeed = Int(ProcessInfo.processInfo.environment["FILE_FUZZ_CASES"] ?? "") ?? 100
        var rng = SplitMix64(seed: 0x5EED_F11E)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakBefore = usage.ru_maxrss  // KiB on Linux
        var read = 0, refused = 0
        for (name, format, valid) in try seeds() {
            let p = try write(valid, name)
            XCTAssertGreaterThan(try readAll(p, format), 0, "seed \(name) must read")
            for i in 0..<perSeed {
                let b = mutate(valid, format, &rng)
                let q = try write(b, "m-\(name)")
                do {
                    let n = try readAll(q, format)
                    // Deflate's 1032:1 bounds what any member can honestly produce.
                    XCTAssertLessThanOrEqual(n, 4 * 1032 * (b.count + 1), "\(name) case \(i): \(n) bytes from \(b.count)")
                    read += 1
                } catch {
                    XCTAssertTrue("\(error)".contains(q), "\(name) case \(i): error does not name the file: \(error)")
                    refused += 1
                }
            }
        }
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let grownMiB = (usage.ru_maxrss - peakBefore) / 1024
        print("file reader fuzz: \(read + refused) cases, \(read) read, \(refused) refused; peak RSS grew \(grownMiB) MiB")
        XCTAssertGreaterThan(refused, read / 4)
        XCTAssertLessThan(grownMiB, 512, "a mutated file made a reader allocate hundreds of MiB")
    }
}
