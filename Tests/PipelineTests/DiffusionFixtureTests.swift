import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineDiT
@testable import PipelineVAE
@testable import PipelineDiffusion
@testable import PipelineJobs

/// ../shared/fixtures/diffusion/tiny with the model dit/tiny, within the README's
/// tolerances (x_t and losses 1e-4, sampler outputs 1e-3).
final class DiffusionFixtureTests: XCTestCase {
    func load() throws -> (DiT, SafeTensorsFile, SafeTensorsWriter) {
        let io = try SafeTensorsFile(path: try Fixtures.require("diffusion/tiny/io.safetensors"))
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"),
                                 configFile: try Fixtures.require("dit/tiny/config.json"))
        return (model, io, try DiffusionEval.run(model: model, inputs: io))
    }

    func tensor(_ w: SafeTensorsWriter, _ name: String) throws -> Tensor {
        let dir = Fixtures.tempDir("diffusion-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try w.write(to: dir + "/out.safetensors")
        return try SafeTensorsFile(path: dir + "/out.safetensors").tensor(name)
    }

    func testTrainingLossesAndSamplersMatchReference() throws {
        let (_, io, out) = try load()
        let dir = Fixtures.tempDir("diffusion-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try out.write(to: dir + "/out.safetensors")
        let got = try SafeTensorsFile(path: dir + "/out.safetensors")
        for (name, tol) in [("x_t", Float(1e-4)), ("loss", 1e-4), ("mse", 1e-4), ("vb", 1e-4),
                            ("ddpm_cfg", 1e-3), ("ddpm_nocfg", 1e-3), ("ddim_cfg", 1e-3)] {
            assertClose(try got.tensor(name), try io.tensor(name), tol: tol, name)
        }
        for key in ["respaced_timestep_map", "ddim_timestep_map"] {
            XCTAssertEqual(try got.int64s(key), try io.int64s(key), key)
        }
        XCTAssertEqual(try got.doubles("ddim_betas"), try io.doubles("ddim_betas"))
    }

    /// Elastic determinism through the real DiT: samples 0..15 in one batch, in
    /// batches of 3, and as two runs (0..7, 8..15), with different thread counts,
    /// are bit-identical (per-sample model calls; a batched sgemm is not row-independent).
    func testElasticDeterminismWithDiT() throws {
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"),
                                 configFile: try Fixtures.require("dit/tiny/config.json"))
        func engine(workers: Int = 2) throws -> SampleEngine {
            try SampleEngine.standard(model: model, settings: SamplerSettings(kind: .ddpm, cfgScale: 1.5,
                                                                              batching: .perSample(workers: workers)),
                                      steps: 3, seed: 77, labels: .balanced, total: 16)
        }
        let one = try engine().generate(indices: Array(0..<16), batchSize: 16)
        let threes = try engine().generate(indices: Array(0..<16), batchSize: 3)
        let a = try engine(workers: 1).generate(indices: Array(0..<8), batchSize: 8)
        let previous = Threads.count
        Threads.set(1)
        let b = try engine(workers: 3).generate(indices: Array(8..<16), batchSize: 8)
        Threads.set(previous)
        assertBitIdentical(threes.latents, one.latents, "batches of 3")
        assertBitIdentical(Tensor.concat([a.latents, b.latents]), one.latents, "two runs")
        XCTAssertEqual(one.labels, a.labels + b.labels)
    }

    func testModelSpecAndEvalInputErrors() throws {
        XCTAssertEqual(try DiTModelSpec(parsing: "random:DiT-S/2"), .random(.s2))
        XCTAssertEqual(try DiTModelSpec(parsing: "/x/y.pt"), .weights(path: "/x/y.pt"))
        XCTAssertThrowsError(try DiTModelSpec(parsing: "random:DiT-Q/3"))
        XCTAssertThrowsError(try DiTModelSpec.random(.s2).load(configFile: nil, numHeads: nil, imageSize: 250))
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"),
                                 configFile: try Fixtures.require("dit/tiny/config.json"))
        let dir = Fixtures.tempDir("diffusion-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter(metadata: ["respacing": "10"])
        w.add("other", Tensor(zeros: [1]))
        try w.write(to: dir + "/empty.safetensors")
        XCTAssertThrowsError(try DiffusionEval.run(model: model, inputs: try SafeTensorsFile(path: dir + "/empty.safetensors"))) {
            XCTAssertTrue("\($0)".contains("neither x0"), "\($0)")
        }
        let io = try SafeTensorsFile(path: try Fixtures.require("diffusion/tiny/io.safetensors"))
        XCTAssertThrowsError(try DiffusionEval.run(model: model, inputs: io, options: .init(respacing: "abc"))) {
            XCTAssertTrue("\($0)".contains("respacing"), "\($0)")
        }
    }

    /// `dit-worker sample`'s library path: latents.npy, labels.npy and, with a VAE,
    /// one PNG per sample named by its global index.
    func testSampleRunWritesLatentsLabelsAndPNGs() throws {
        let vae = try AutoencoderKL.load(folder: try Fixtures.require("vae/tiny"))
        let dir = Fixtures.tempDir("sample-run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = SampleRun(numSamples: 3, seed: 5, settings: SamplerSettings(kind: .ddim, cfgScale: 2), steps: 5,
                            labels: .balanced, batchSize: 2, outputDirectory: dir)
        let result = try run.run(model: ClosedFormModel(), decoder: vae)
        XCTAssertEqual(try NPY.read(dir + "/latents.npy").tensor().values, result.latents.values)
        XCTAssertEqual(try NPY.read(dir + "/labels.npy").int64s(), result.labels.map(Int64.init))
        let images = try vae.decode(result.latents)
        let bytes = SampleQuantizer.uint8NHWC(images)
        for i in 0..<3 {
            let png = try ImageDecoder.decode(path: dir + String(format: "/%06d.png", i))
            XCTAssertEqual(png.width, 8)
            XCTAssertEqual(png.pixels, Array(bytes[(i * 192)..<((i + 1) * 192)]), "sample \(i)")
        }
        XCTAssertThrowsError(try SampleRun(numSamples: 0, seed: 0, settings: SamplerSettings(kind: .ddpm), steps: 5,
                                           labels: .uniform, batchSize: 2, outputDirectory: dir).run(model: ClosedFormModel()))
    }
}
