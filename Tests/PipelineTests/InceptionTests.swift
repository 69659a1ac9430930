import XCTest
@testable import Pipeline

final class InceptionTests: XCTestCase {
    static var model: FIDInceptionV3?

    func loadModel() throws -> FIDInceptionV3 {
        if let m = InceptionTests.model { return m }
        let m = try FIDInceptionV3(path: try Fixtures.require("inception/fid-inception/weights.f16.safetensors"))
        InceptionTests.model = m
        return m
    }

    /// pytorch-fid parity at 64 px (upsampled by F.interpolate) and 299 px (identity resize).
    func testMatchesPytorchFID() throws {
        let model = try loadModel()
        let io = try SafeTensorsFile(path: try Fixtures.require("inception/fid-inception/io.safetensors"))
        for k in 0..<2 {
            let f = try model.features(try io.tensor("image\(k)"))
            assertClose(f.pool3, try io.tensor("pool3_\(k)"), tol: 1e-4, "pool3_\(k)")
            assertClose(f.logits, try io.tensor("logits_\(k)"), tol: 1e-4, "logits_\(k)")
            XCTAssertEqual(f.spatial.shape, [2, 17 * 17 * 7])
        }
    }

    func testStrictLoadingNamesMissingKey() throws {
        final class Dropping: TensorSource {
            let inner: SafeTensorsFile
            init(_ i: SafeTensorsFile) { inner = i }
            var sourceName: String { "dropped.safetensors" }
            var keys: [String] { inner.keys.filter { $0 != "Mixed_6d.branch1x1.bn.running_var" } }
            func info(_ key: String) -> TensorInfo? { key == "Mixed_6d.branch1x1.bn.running_var" ? nil : inner.info(key) }
            func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R { try inner.withRawBytes(key, body) }
        }
        let src = Dropping(try SafeTensorsFile(path: try Fixtures.require("inception/fid-inception/weights.f16.safetensors")))
        XCTAssertThrowsError(try FIDInceptionV3(source: src)) { e in
            XCTAssertTrue("\(e)".contains("Mixed_6d.branch1x1.bn.running_var"), "\(e)")
        }
    }
}
