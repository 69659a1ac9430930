import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineDiffusion

/// Records every model call: its timestep and whether it was a guided (CFG) call.
final class CallRecorder: NoisePredictionModel {
    let base: ClosedFormModel
    private let lock = NSLock()
    private(set) var calls: [(t: Float, guided: Bool, labels: [Int])] = []
    init(_ base: ClosedFormModel) { self.base = base }
    var inChannels: Int { base.inChannels }
    var inputSize: Int { base.inputSize }
    var numClasses: Int { base.numClasses }
    var learnsSigma: Bool { base.learnsSigma }
    func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
        lock.lock(); calls.append((t[0], false, y)); lock.unlock()
        return try base.forward(x, t: t, y: y)
    }
    func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor {
        lock.lock(); calls.append((t[0], true, y)); lock.unlock()
        return try base.forwardWithCFG(x, t: t, y: y, scale: scale, guideAllChannels: guideAllChannels)
    }
}

final class SchedulerSamplerTests: XCTestCase {
    /// With an oracle model (eps = the exact noise around a label's target, on ADM's float64
    /// alphā at the integer timestep), every scheduler and spacing lands on the target (those that
    /// stop at the first training sigma, ~0.01, rather than 0 keep that much of the noise).
    func testSchedulersConvergeToTheOracleTarget() throws {
        let base = try NoiseSchedule.linear.betas(steps: 1000)
        var run = 1.0
        let alphaBar = base.map { run *= 1 - $0; return run }
        let endsAtSigmaMin: [(SchedulerPreset, String)] = [
            (.dpmpp3m, #"{"final_sigmas_type": "sigma_min"}"#), (.ddimDiffusers, "{}"), (.ddimDiffusers, #"{"timestep_spacing": "trailing"}"#),
        ]
        let variants: [(SchedulerPreset, String)] = [
            (.dpmpp2m, "{}"), (.dpmpp2m, #"{"timestep_spacing": "trailing"}"#),
            (.dpmpp2mKarras, "{}"), (.dpmpp2m, #"{"solver_type": "heun"}"#), (.dpmpp2m, #"{"use_lu_lambdas": true}"#), (.euler, #"{"use_karras_sigmas": true, "sigma_min": 0.02}"#),
            (.unipc, "{}"), (.unipc, #"{"solver_order": 3, "solver_type": "bh1"}"#), (.unipc, #"{"use_karras_sigmas": true}"#),
            (.unipc, #"{"predict_x0": false}"#), (.euler, #"{"timestep_spacing": "trailing"}"#),
            (.heun, #"{"timestep_spacing": "trailing"}"#),
        ]
        for (k, (preset, json)) in (variants + endsAtSigmaMin).enumerated() {
            var c = preset.config
            try c.apply(jsonData: Data(json.utf8), source: "test")
            let sampler = try SchedulerSampler(scheduler: try c.scheduler(steps: 12), settings: SamplerSettings(scheduler: c))
            let model = ClosedFormModel(oracleAlphaBar: alphaBar)
            let x = try sampler.sample(model: model, indices: [0, 1], labels: [2, 7], noise: PhiloxNoise(seed: 3))
            let per = x.count / 2
            var worst: Float = 0
            for b in 0..<2 {
                for i in 0..<per {
                    worst = max(worst, abs(x.data[b * per + i] - ClosedFormModel.target(label: [2, 7][b], element: i)))
                }
            }
            XCTAssertLessThan(worst, k < variants.count ? 0.02 : 0.06, "\(preset.rawValue) \(json)")
        }
    }

    /// Elastic determinism: one batch, batches of 3, two runs with other thread counts: same bits.
    func testEveryPresetIsElastic() throws {
        for preset in SchedulerPreset.allCases {
            func engine(workers: Int) throws -> SampleEngine {
                try SampleEngine.standard(model: ClosedFormModel(), settings: SamplerSettings(
                    scheduler: preset.config, cfgScale: 2, batching: .perSample(workers: workers)),
                    steps: 6, seed: 11, labels: .balanced, total: 10)
            }
            let one = try engine(workers: 2).generate(indices: Array(0..<10), batchSize: 10)
            let threes = try engine(workers: 3).generate(indices: Array(0..<10), batchSize: 3)
            let a = try engine(workers: 1).generate(indices: Array(0..<4), batchSize: 4)
            let b = try engine(workers: 2).generate(indices: Array(4..<10), batchSize: 2)
            assertBitIdentical(threes.latents, one.latents, preset.rawValue)
            assertBitIdentical(Tensor.concat([a.latents, b.latents]), one.latents, preset.rawValue)
        }
    }

    /// `--cfg-interval LO,HI`: guided calls exactly at model timesteps inside, one conditional
    /// call elsewhere, for a diffusers scheduler and for ADM's DDPM; counted in the evaluations.
    func testGuidanceIntervalGuidesOnlyInside() throws {
        let interval = try GuidanceInterval(parsing: "100,600")
        for (name, settings) in [("dpmpp2m", SamplerSettings(scheduler: SchedulerPreset.dpmpp2m.config, cfgScale: 3, cfgInterval: interval)),
                                 ("heun", SamplerSettings(scheduler: SchedulerPreset.heun.config, cfgScale: 3, cfgInterval: interval)),
                                 ("ddpm", SamplerSettings(kind: .ddpm, cfgScale: 3, cfgInterval: interval))] {
            let model = CallRecorder(ClosedFormModel())
            let engine = try SampleEngine.standard(model: model, settings: settings, steps: 10, seed: 1, labels: .uniform, total: 1)
            let full = try SampleEngine.standard(model: ClosedFormModel(), settings: { var s = settings; s.cfgInterval = nil; return s }(),
                                                 steps: 10, seed: 1, labels: .uniform, total: 1)
            let none = try SampleEngine.standard(model: ClosedFormModel(), settings: { var s = settings; s.cfgScale = 1; return s }(),
                                                 steps: 10, seed: 1, labels: .uniform, total: 1)
            let x = try engine.generate(indices: [0], batchSize: 1).latents
            XCTAssertEqual(model.calls.count, engine.sampler.numSteps, name)
            XCTAssertTrue(model.calls.contains { $0.guided } && model.calls.contains { !$0.guided }, name)
            for c in model.calls { XCTAssertEqual(c.guided, c.t >= 100 && c.t <= 600, "\(name) t=\(c.t)") }
            XCTAssertEqual(engine.sampler.modelEvaluationsPerSample, model.calls.count + model.calls.filter(\.guided).count, name)
            XCTAssertEqual(full.sampler.modelEvaluationsPerSample, 2 * full.sampler.numSteps, name)
            // Neither the fully guided nor the unguided chain.
            XCTAssertNotEqual(x.values, try full.generate(indices: [0], batchSize: 1).latents.values, name)
            XCTAssertNotEqual(x.values, try none.generate(indices: [0], batchSize: 1).latents.values, name)
        }
    }

    /// Unconditional sampling: the null label (= numClasses) for every sample, accepted by the
    /// samplers and by label lists; refused for a model without a null class.
    func testNullLabelPolicy() throws {
        for settings in [SamplerSettings(kind: .ddim), SamplerSettings(scheduler: SchedulerPreset.euler.config)] {
            let model = CallRecorder(ClosedFormModel())
            let engine = try SampleEngine.standard(model: model, settings: settings, steps: 3, seed: 2,
                                                   labels: try ClassLabelPolicy(parsing: "null"), total: 3)
            let r = try engine.generate(indices: [0, 1, 2], batchSize: 3)
            XCTAssertEqual(r.labels, [10, 10, 10])
            XCTAssertTrue(model.calls.allSatisfy { $0.labels == [10] && !$0.guided })
            let listed = try SampleEngine.standard(model: ClosedFormModel(), settings: settings, steps: 3, seed: 2,
                                                   labels: .list([10, 3]), total: 2)
            XCTAssertEqual(try listed.generate(indices: [0, 1], batchSize: 2).labels, [10, 3])
            XCTAssertThrowsError(try SampleEngine.standard(model: ClosedFormModel(), settings: settings, steps: 3, seed: 2,
                                                           labels: .list([11]), total: 1))
        }
        XCTAssertThrowsError(try ClassLabeler(policy: .null, numClasses: 10, total: 2, noise: PhiloxNoise(seed: 0))) {
            XCTAssertTrue("\($0)".contains("null class"))
        }
    }
}
