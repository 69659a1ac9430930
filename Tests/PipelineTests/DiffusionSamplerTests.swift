import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineDiffusion

/// A closed-form, row-independent stand-in for DiT. With `oracle`, its eps is the
/// exact noise of x_t around a label-dependent target x0 (using the ORIGINAL
/// chain's alphā at the timestep it is fed), so any sampler must land on x0.
final class ClosedFormModel: NoisePredictionModel {
    let inChannels = 4
    let inputSize = 4
    let numClasses = 10
    let learnsSigma: Bool
    let oracleAlphaBar: [Double]?
    private let lock = NSLock()
    private var calls = 0
    var forwardCalls: Int { lock.lock(); defer { lock.unlock() }; return calls }

    init(learnsSigma: Bool = true, oracleAlphaBar: [Double]? = nil) {
        self.learnsSigma = learnsSigma
        self.oracleAlphaBar = oracleAlphaBar
    }

    static func target(label y: Int, element i: Int) -> Float { Float(y) * 0.1 - 0.45 + Float(i % 7) * 0.05 }

    func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor {
        lock.lock(); calls += 1; lock.unlock()
        let n = x.shape[0], per = x.count / n
        let outC = learnsSigma ? 2 * inChannels : inChannels
        let out = Tensor(uninitialized: [n, outC, inputSize, inputSize])
        for b in 0..<n {
            let xs = x.data + b * per, o = out.data + b * outC * per / inChannels
            for i in 0..<per {
                if let ab = oracleAlphaBar {
                    let a = ab[Int(t[b])]
                    o[i] = Float((Double(xs[i]) - a.squareRoot() * Double(Self.target(label: y[b], element: i)))
                                 / (1 - a).squareRoot())
                } else {
                    o[i] = tanh(0.3 * xs[i] + 0.0007 * t[b] - 0.05 * Float(y[b]) + 0.01 * Float(i % 5))
                }
                if learnsSigma { o[per + i] = sin(0.5 * xs[i] + 0.002 * t[b] + 0.1 * Float(y[b])) }
            }
        }
        return out
    }

    /// DiT's forward_with_cfg (guiding all eps channels whatever the flag).
    func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor {
        let n = x.shape[0] / 2
        let half = x.slice(0..<n)
        let out = try forward(Tensor.concat([half, half]), t: t, y: y)
        let rowCount = out.count / (2 * n), epsCount = rowCount / (learnsSigma ? 2 : 1)
        for b in 0..<n {
            let c = out.data + b * rowCount, u = out.data + (b + n) * rowCount
            for i in 0..<epsCount {
                let g = u[i] + scale * (c[i] - u[i])
                c[i] = g
                u[i] = g
            }
        }
        return out
    }
}

final class DiffusionSamplerTests: XCTestCase {
    func oracle(_ d: GaussianDiffusion) throws -> ClosedFormModel {
        let base = try GaussianDiffusion.create(respacing: nil, learnSigma: true)
        XCTAssertEqual(d.originalNumSteps, base.numTimesteps)
        return ClosedFormModel(oracleAlphaBar: base.alphasCumprod)
    }

    /// With the exact eps, DDPM (posterior mean at t = 0) and DDIM both return x0,
    /// through the respaced chain's timestep map.
    func testSamplersRecoverTargetWithOracleModel() throws {
        for (kind, spacing, eta) in [(SamplerKind.ddpm, "10", Float(0)), (.ddim, "ddim25", 0), (.ddim, "ddim25", 1),
                                     (.ddpm, "5,5", 0)] {
            let d = try GaussianDiffusion.create(respacing: try Respacing(parsing: spacing))
            let model = try oracle(d)
            let sampler = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: kind, cfgScale: 1, eta: eta))
            let labels = [3, 7]
            let x = try sampler.sample(model: model, indices: [0, 1], labels: labels, noise: PhiloxNoise(seed: 3))
            let per = x.count / 2
            var worst: Float = 0
            for b in 0..<2 {
                for i in 0..<per {
                    worst = max(worst, abs(x.data[b * per + i] - ClosedFormModel.target(label: labels[b], element: i)))
                }
            }
            XCTAssertLessThan(worst, 2e-3, "\(kind) \(spacing) eta \(eta)")
            XCTAssertEqual(model.forwardCalls, 2 * d.numTimesteps, "one call per sample and step")
        }
    }

    func testTrainingLossesWithOracleModel() throws {
        let d = try GaussianDiffusion.create(respacing: nil, learnSigma: true)
        let model = try oracle(d)
        let labels = [2, 5, 9]
        let x0 = Tensor(uninitialized: [3, 4, 4, 4])
        for b in 0..<3 { for i in 0..<64 { x0.data[b * 64 + i] = ClosedFormModel.target(label: labels[b], element: i) } }
        let noise = try PhiloxNoise(seed: 1).normal(indices: [0, 1, 2], sampleShape: [4, 4, 4], purpose: .trainingNoise)
        let terms = try d.trainingLosses(xStart: x0, t: [0, 10, 900], noise: noise) { x, t in
            try model.forward(x, t: t, y: labels)
        }
        for m in terms.mse ?? [] { XCTAssertLessThan(m, 1e-4) }
        let vb = try XCTUnwrap(terms.vb)
        XCTAssertEqual(vb.count, 3)
        // Exact mean: the KL reduces to the variance mismatch, >= 0.
        XCTAssertTrue(vb[1] >= 0 && vb[2] >= 0)
        XCTAssertEqual(terms.loss[1], terms.mse![1] + vb[1])
    }

    func testDiscretizedLikelihoodAndKL() {
        XCTAssertEqual(DiffusionUtils.normalKL(mean1: 0.3, logvar1: -1, mean2: 0.3, logvar2: -1), 0, accuracy: 1e-7)
        // KL(N(0,1) || N(1, e)) = 0.5 (-1 + 1 - 0 + e^-1 + e^-1).
        XCTAssertEqual(DiffusionUtils.normalKL(mean1: 0, logvar1: 0, mean2: 1, logvar2: 1),
                       Float(0.5 * (2 * exp(-1.0))), accuracy: 1e-6)
        XCTAssertEqual(DiffusionUtils.approxStandardNormalCDF(0), 0.5)
        XCTAssertEqual(DiffusionUtils.meanFlat(Tensor(shape: [2, 1, 2], values: [1, 2, -3, 5])), [1.5, 1])
        XCTAssertEqual(DiffusionUtils.approxStandardNormalCDF(1.0), 0.8413, accuracy: 2e-4)
        // Edge bins are open-ended: x = -1 takes log CDF(plus).
        let lo = DiffusionUtils.discretizedGaussianLogLikelihood(x: -1, mean: -1, logScale: log(0.5))
        XCTAssertEqual(lo, log(DiffusionUtils.approxStandardNormalCDF(2.0 / 255.0)), accuracy: 1e-6)
        let mid = DiffusionUtils.discretizedGaussianLogLikelihood(x: 0, mean: 0, logScale: 0)
        XCTAssertEqual(mid, log(2 * (DiffusionUtils.approxStandardNormalCDF(1.0 / 255.0) - 0.5)), accuracy: 1e-4)
    }

    /// Elastic determinism: samples 0..15 drawn in one batch, in batches of 3, and
    /// as two runs (0..7, 8..15) are bit-identical.
    func testElasticDeterminism() throws {
        for (kind, cfg, eta) in [(SamplerKind.ddpm, Float(1.5), Float(0)), (.ddim, 4, 0.5), (.ddpm, 1, 0)] {
            func engine() throws -> SampleEngine {
                try SampleEngine.standard(model: ClosedFormModel(), settings: SamplerSettings(kind: kind, cfgScale: cfg, eta: eta),
                                          steps: 10, seed: 2024, labels: .uniform, total: 16)
            }
            let one = try engine().generate(indices: Array(0..<16), batchSize: 16)
            let threes = try engine().generate(indices: Array(0..<16), batchSize: 3)
            let a = try engine().generate(indices: Array(0..<8), batchSize: 8)
            let b = try engine().generate(indices: Array(8..<16), batchSize: 5)
            let two = Tensor.concat([a.latents, b.latents])
            XCTAssertEqual(one.latents.shape, [16, 4, 4, 4])
            assertBitIdentical(threes.latents, one.latents, "\(kind) batches of 3")
            assertBitIdentical(two, one.latents, "\(kind) two runs")
            XCTAssertEqual(one.labels, threes.labels)
            XCTAssertEqual(one.labels, a.labels + b.labels)
            // Shuffled order: the same rows, permuted.
            let shuffled = try engine().generate(indices: [15, 0, 7], batchSize: 2)
            XCTAssertEqual(shuffled.latents.slice(0..<1).values, one.latents.slice(15..<16).values)
            XCTAssertEqual(shuffled.latents.slice(2..<3).values, one.latents.slice(7..<8).values)
            // Another seed changes everything.
            let other = try SampleEngine.standard(model: ClosedFormModel(), settings: SamplerSettings(kind: kind, cfgScale: cfg, eta: eta),
                                                  steps: 10, seed: 2025, labels: .uniform, total: 16)
            XCTAssertNotEqual(try other.generate(indices: [0], batchSize: 1).latents.values, one.latents.slice(0..<1).values)
        }
    }

    func testCFGScaleOneSkipsDoubling() throws {
        final class Counting: NoisePredictionModel {
            let inner = ClosedFormModel()
            var inChannels: Int { 4 }
            var inputSize: Int { 4 }
            var numClasses: Int { 10 }
            var learnsSigma: Bool { true }
            var cfgCalls = 0
            func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor { try inner.forward(x, t: t, y: y) }
            func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor {
                cfgCalls += 1
                XCTAssertEqual(y, [1, 2, 10, 10], "null label = num_classes in the second half")
                XCTAssertEqual(x.shape[0], 4)
                return try inner.forwardWithCFG(x, t: t, y: y, scale: scale, guideAllChannels: guideAllChannels)
            }
        }
        let d = try GaussianDiffusion.create(respacing: .sections([4]))
        let m = Counting()
        let plain = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddpm, cfgScale: 1, batching: .batched))
            .sample(model: m, indices: [0, 1], labels: [1, 2], noise: PhiloxNoise(seed: 0))
        XCTAssertEqual(m.cfgCalls, 0)
        let guided = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddpm, cfgScale: 3, batching: .batched))
            .sample(model: m, indices: [0, 1], labels: [1, 2], noise: PhiloxNoise(seed: 0))
        XCTAssertEqual(m.cfgCalls, 4)
        XCTAssertNotEqual(plain.values, guided.values)
        // Per-sample calls give the same rows (this model is row-independent).
        let perSample = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddpm, cfgScale: 1, batching: .perSample(workers: 2)))
            .sample(model: ClosedFormModel(), indices: [0, 1], labels: [1, 2], noise: PhiloxNoise(seed: 0))
        assertBitIdentical(perSample, plain, "per-sample vs batched")
    }

    func testBadInputIsAClearError() throws {
        let d = try GaussianDiffusion.create(respacing: .sections([4]))
        XCTAssertThrowsError(try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddpm, cfgScale: 0.5))) {
            XCTAssertEqual($0 as? DiffusionError, .cfgScaleBelowOne(0.5))
            XCTAssertTrue("\($0)".contains("below 1"))
        }
        let s = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddim, cfgScale: 2))
        // Label 10 is the null class (accepted, as the reference's p_sample_loop takes it); 11 is out of range.
        XCTAssertThrowsError(try s.sample(model: ClosedFormModel(), indices: [0, 5], labels: [1, 11], noise: PhiloxNoise(seed: 0))) {
            XCTAssertEqual($0 as? DiffusionError, .labelOutOfRange(label: 11, index: 5, numClasses: 11))
        }
        XCTAssertThrowsError(try s.sample(model: ClosedFormModel(), indices: [0], labels: [-1], noise: PhiloxNoise(seed: 0)))
        XCTAssertThrowsError(try SampleEngine.standard(model: ClosedFormModel(), settings: SamplerSettings(kind: .ddpm),
                                                       steps: 1001, seed: 0, labels: .uniform, total: 1)) {
            XCTAssertTrue("\($0)".contains("cannot divide"), "\($0)")
        }
        XCTAssertThrowsError(try SampleEngine.standard(model: ClosedFormModel(), settings: SamplerSettings(kind: .ddim),
                                                       steps: 999, seed: 0, labels: .uniform, total: 1)) {
            XCTAssertTrue("\($0)".contains("integer stride"), "\($0)")
        }
        // A fixed-variance chain cannot read a learned-sigma model's 2C channels.
        let fixed = try GaussianDiffusion.create(respacing: .sections([4]), learnSigma: false)
        let out = try ClosedFormModel().forward(Tensor(zeros: [1, 4, 4, 4]), t: [0], y: [0])
        XCTAssertThrowsError(try fixed.pMeanVariance(modelOutput: out, x: Tensor(zeros: [1, 4, 4, 4]), t: [0], clipDenoised: false))
        XCTAssertThrowsError(try d.pMeanVariance(modelOutput: out, x: Tensor(zeros: [1, 4, 4, 4]), t: [4], clipDenoised: false))
    }

    func testFixedVariancesAndClipping() throws {
        let d = try GaussianDiffusion.create(respacing: .sections([10]), learnSigma: false)
        let small = try GaussianDiffusion.create(respacing: .sections([10]), sigmaSmall: true, learnSigma: false)
        let x = Tensor(shape: [2, 1, 1, 1], values: [3, -3])
        let eps = Tensor(shape: [2, 1, 1, 1], values: [0, 0])
        let large = try d.pMeanVariance(modelOutput: eps, x: x, t: [0, 5], clipDenoised: true)
        XCTAssertEqual(large.logVariance.values[0], Float(log(d.posteriorVariance[1])))
        XCTAssertEqual(large.variance.values[1], Float(d.betas[5]))
        let sm = try small.pMeanVariance(modelOutput: eps, x: x, t: [0, 5], clipDenoised: false)
        XCTAssertEqual(sm.variance.values[1], Float(small.posteriorVariance[5]))
        XCTAssertEqual(sm.logVariance.values[0], Float(small.posteriorLogVarianceClipped[0]))
        // x0 = sqrt(1/alphā) x is clipped to [-1, 1] only when asked.
        XCTAssertEqual(large.predXstart.values, [1, -1])
        XCTAssertGreaterThan(sm.predXstart.values[0], 3)
    }
}

/// Bit equality with a short message (the index and values of the first difference).
func assertBitIdentical(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
    guard a.shape == b.shape else { return }
    var differing = 0, first = -1
    for i in 0..<a.count where a.data[i].bitPattern != b.data[i].bitPattern {
        differing += 1
        if first < 0 { first = i }
    }
    XCTAssertEqual(differing, 0, "\(what): \(differing) of \(a.count) values differ, first at \(first): "
                   + (first >= 0 ? "\(a.data[first]) vs \(b.data[first])" : ""), file: file, line: line)
}
