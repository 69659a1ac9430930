import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineInception

final class InceptionTests: XCTestCase {
    static var model: FIDInceptionV3?

    func loadModel() throws -> FIDInceptionV3 {
        if let m = InceptionTests.model { return m }
        let m = try FIDInceptionV3(path: try Fixtures.require("inception/fid-inception/weights.f16.safetensors"))
        InceptionTests.model = m
        return m
    }

    /// pytorch-fid parity at 64 px (upsampled by F.interpolate) and 299 px (identity
    /// resize), through the `eval inception` driver (batch 1, so batching is covered too).
    func testMatchesPytorchFID() throws {
        let model = try loadModel()
        let ioPath = try Fixtures.require("inception/fid-inception/io.safetensors")
        let io = try SafeTensorsFile(path: ioPath)
        let dir = Fixtures.tempDir("inception")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try InceptionEval.run(model: model, inputs: ioPath, output: dir + "/out.safetensors", batch: 1)
        XCTAssertEqual(Set(keys), ["pool3_0", "pool3_1", "logits_0", "logits_1"])
        let out = try SafeTensorsFile(path: dir + "/out.safetensors")
        for k in 0..<2 {
            assertClose(try out.tensor("pool3_\(k)"), try io.tensor("pool3_\(k)"), tol: 1e-4, "pool3_\(k)")
            assertClose(try out.tensor("logits_\(k)"), try io.tensor("logits_\(k)"), tol: 1e-4, "logits_\(k)")
        }
        // ADM's IS logits are the same product without the bias.
        let pool = try io.tensor("pool3_0")
        let unbiased = model.admSoftmaxLogits(pool), biased = pool.linear(weight: model.fcWeight, bias: model.fcBias)
        for j in 0..<1008 { XCTAssertEqual(biased.data[j] - unbiased.data[j], model.fcBias.data[j], accuracy: 1e-4) }
    }

    /// The sFID feature: channels 0..<7 of Mixed_6d's branch1x1, NHWC-flattened.
    func testSpatialFeatureLayout() {
        // (C=9, N=2, H=2, W=3) with value = c·100 + n·10 + (h·3 + w).
        let x = Tensor(uninitialized: [9, 2, 2, 3])
        for c in 0..<9 { for n in 0..<2 { for p in 0..<6 { x.data[((c * 2 + n) * 6) + p] = Float(c * 100 + n * 10 + p) } } }
        let s = FIDInceptionV3.spatialFeatures(x, channels: 7)
        XCTAssertEqual(s.shape, [2, 42])
        for n in 0..<2 { for p in 0..<6 { for c in 0..<7 {
            XCTAssertEqual(s.data[n * 42 + p * 7 + c], Float(c * 100 + n * 10 + p))
        } } }
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
