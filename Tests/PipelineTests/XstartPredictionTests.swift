import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT
@testable import PipelineDiffusion
@testable import PipelineTraining

/// A model that predicts x0 (`create_diffusion(predict_xstart=True)`) where it can: exactly the
/// label's target of `ClosedFormModel` (an oracle), so every sampler must land on it.
final class XstartOracleModel: NoisePredictionModel {
    let inChannels = 4
    let inputSize = 4
    let numClasses = 10
    let learnsSigma = false
    var predictsXstart: Bool { true }

    func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
        let n = x.shape[0], per = x.count / n
        let out = Tensor(uninitialized: x.shape)
        for b in 0..<n {
            for i in 0..<per { out.data[b * per + i] = ClosedFormModel.target(label: y[b], element: i) }
        }
        return out
    }

    func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor {
        let n = x.shape[0] / 2
        let out = try forward(x, t: t, y: Array(y[0..<n]) + Array(y[0..<n]))
        return out
    }
}

/// x0-predicting DiTs end to end: DiT's own DDPM/DDIM chains and losses (references made by
/// `scripts/reference/make_diffusion_fixture.py`), the diffusers schedulers (driven as
/// `prediction_type="sample"`), config.json and the trainer's options (the training loop itself:
/// `TrainingMSETests.testTrainerTrainsAFixedVarianceModel`).
final class XstartPredictionTests: XCTestCase {
    static let references = Fixtures.packageRoot.appendingPathComponent("Tests/PipelineTests/Resources/diffusion-x0").path

    /// Both references (fixed and learned variances, two shapes): x_t, the losses and the
    /// sampler chains at the shared fixtures' diffusion tolerances.
    func testDDPMAndDDIMMatchDiTsCodeForXstartModels() throws {
        let dirs = try FileManager.default.contentsOfDirectory(atPath: Self.references).sorted()
            .filter { FileManager.default.fileExists(atPath: "\(Self.references)/\($0)/io.safetensors") }
        XCTAssertEqual(dirs, ["tiny-x0", "tiny-x0-ls"])
        for name in dirs {
            let dir = "\(Self.references)/\(name)"
            let model = try DiT.load(path: dir + "/weights.safetensors", configFile: dir + "/config.json")
            XCTAssertTrue(model.predictsXstart, name)
            let io = try SafeTensorsFile(path: dir + "/io.safetensors")
            XCTAssertEqual(io.metadata["predict_xstart"], "True")
            let out = try DiffusionEval.run(model: model, inputs: io)
            let tmp = Fixtures.tempDir("x0-eval")
            defer { try? FileManager.default.removeItem(atPath: tmp) }
            try out.write(to: tmp + "/out.safetensors")
            let got = try SafeTensorsFile(path: tmp + "/out.safetensors")
            var names: [(String, Float)] = [("x_t", 1e-4), ("loss", 1e-4), ("mse", 1e-4),
                                            ("ddpm_cfg", 1e-3), ("ddpm_nocfg", 1e-3), ("ddim_cfg", 1e-3)]
            if model.learnsSigma { names.append(("vb", 1e-4)) }
            for (key, tol) in names { assertClose(try got.tensor(key), try io.tensor(key), tol: tol, "\(name) \(key)") }
            for key in ["respaced_timestep_map", "ddim_timestep_map"] {
                XCTAssertEqual(try got.int64s(key), try io.int64s(key), "\(name) \(key)")
            }
        }
    }

    /// The same weights read as an epsilon model give other chains: the references above do
    /// depend on what the model predicts.
    func testPredictionTypeChangesTheChain() throws {
        let dir = "\(Self.references)/tiny-x0"
        let x0Model = try DiT.load(path: dir + "/weights.safetensors", configFile: dir + "/config.json")
        var config = x0Model.config
        config.prediction = .epsilon
        let epsModel = try DiT(config: config, weights: try SafeTensorsFile(path: dir + "/weights.safetensors"))
        let io = try SafeTensorsFile(path: dir + "/io.safetensors")
        let a = try DiffusionEval.run(model: x0Model, inputs: io), b = try DiffusionEval.run(model: epsModel, inputs: io)
        let tmp = Fixtures.tempDir("x0-eval")
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try a.write(to: tmp + "/a.safetensors"); try b.write(to: tmp + "/b.safetensors")
        let ta = try SafeTensorsFile(path: tmp + "/a.safetensors").tensor("ddim_cfg")
        let tb = try SafeTensorsFile(path: tmp + "/b.safetensors").tensor("ddim_cfg")
        let diff = zip(ta.values, tb.values).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(diff, 0.05)
    }

    /// Every diffusers scheduler drives an x0 model (its x0 turned into eps on the scheduler's
    /// schedule, fractional timesteps included) onto the oracle's target.
    func testSchedulersDriveAnXstartModelToItsTarget() throws {
        let variants: [(SchedulerPreset, String)] = [
            (.dpmpp2m, "{}"), (.dpmpp2mKarras, "{}"), (.dpmpp3m, "{}"), (.unipc, "{}"), (.euler, "{}"),
            (.euler, #"{"use_karras_sigmas": true}"#), (.heun, "{}"), (.ddimDiffusers, #"{"timestep_spacing": "trailing"}"#),
        ]
        for (preset, json) in variants {
            var c = preset.config
            try c.apply(jsonData: Data(json.utf8), source: "test")
            for scale in [Float(1), 3] {
                let sampler = try SchedulerSampler(scheduler: try c.scheduler(steps: 10),
                                                   settings: SamplerSettings(scheduler: c, cfgScale: scale))
                let x = try sampler.sample(model: XstartOracleModel(), indices: [0, 1], labels: [2, 7], noise: PhiloxNoise(seed: 5))
                let per = x.count / 2
                var worst: Float = 0
                for b in 0..<2 {
                    for i in 0..<per {
                        worst = max(worst, abs(x.data[b * per + i] - ClosedFormModel.target(label: [2, 7][b], element: i)))
                    }
                }
                // DDIMScheduler with set_alpha_to_one=False stops at the first training alphā, keeping
                // sqrt(1 - alphā_0) ≈ 0.01 of the noise (as for the epsilon oracle).
                XCTAssertLessThan(worst, preset == .ddimDiffusers ? 0.06 : 1e-3, "\(preset.rawValue) \(json) cfg \(scale)")
            }
        }
    }

    /// ADM's samplers with an x0 model built for them land on the target; a diffusion that
    /// expects the other prediction is refused with a clear error.
    func testADMSamplersAndPredictionMismatch() throws {
        for kind in [SamplerKind.ddpm, .ddim] {
            let d = try GaussianDiffusion.create(respacing: try Respacing(parsing: kind == .ddpm ? "25" : "ddim25"),
                                                 predictXstart: true, learnSigma: false)
            let x = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: kind, cfgScale: 1))
                .sample(model: XstartOracleModel(), indices: [0], labels: [4], noise: PhiloxNoise(seed: 1))
            for i in 0..<x.count { XCTAssertEqual(x.data[i], ClosedFormModel.target(label: 4, element: i), accuracy: 1e-3) }
        }
        let eps = try GaussianDiffusion.create(respacing: try Respacing(parsing: "10"), learnSigma: false)
        XCTAssertThrowsError(try DiffusionSampler(diffusion: eps, settings: SamplerSettings(kind: .ddpm, cfgScale: 1))
            .check(model: XstartOracleModel())) { XCTAssertTrue("\($0)".contains("predicts x0"), "\($0)") }
        let engine = try SampleEngine.standard(model: XstartOracleModel(), settings: SamplerSettings(kind: .ddim, cfgScale: 1),
                                               steps: 10, seed: 0, labels: .balanced, total: 4)
        let (latents, labels) = try engine.generate(indices: [0, 1, 2, 3], batchSize: 4)
        let per = latents.count / 4
        for b in 0..<4 {
            for i in 0..<per {
                XCTAssertEqual(latents.data[b * per + i], ClosedFormModel.target(label: labels[b], element: i), accuracy: 1e-3)
            }
        }
    }

    /// `config.json`: `predict_xstart` is read, written only when true, and the trainer refuses it
    /// with a learned variance (its vb term is the epsilon one).
    func testConfigAndTrainingOptions() throws {
        var o = TrainingOptions()
        o.imageSize = 16; o.patchSize = 4; o.hiddenSize = 32; o.depth = 2; o.numHeads = 2
        o.predictXstart = true
        XCTAssertThrowsError(try o.modelConfig()) { XCTAssertTrue("\($0)".contains("--no-learn-sigma"), "\($0)") }
        o.learnSigma = false
        let c = try o.modelConfig()
        XCTAssertEqual(c.prediction, .xStart)
        let json = try TrainingOptions.configJSON(c, classDropoutProb: 0.1)
        XCTAssertEqual(try DiTConfig.parse(json: json, file: "x").prediction, .xStart)
        o.predictXstart = false
        let plain = try TrainingOptions.configJSON(try o.modelConfig(), classDropoutProb: 0.1)
        XCTAssertFalse(String(decoding: plain, as: UTF8.self).contains("predict_xstart"))
        XCTAssertEqual(try DiTConfig.parse(json: plain, file: "x").prediction, .epsilon)
        XCTAssertThrowsError(try DiTConfig.parse(json: Data(#"{"predict_xstart": "yes"}"#.utf8), file: "bad.json")) {
            XCTAssertTrue("\($0)".contains("predict_xstart"), "\($0)")
        }
        // args.json from before the option decodes with the default.
        let old = try JSONDecoder().decode(TrainingOptions.self, from: Data(#"{"steps": 3}"#.utf8))
        XCTAssertFalse(old.predictXstart)
    }
}
