import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineImaging
@testable import PipelineDiT
@testable import PipelineVAE
@testable import PipelineDiffusion
@testable import PipelineMetrics

/// The shipped model (`models/shapes-dit`) draws the class it is asked for: 40 samples with the
/// README's sampler settings (DDIM 25, cfg 3, x0 clipped, seed 0, balanced labels), quantised as
/// sample_ddp.py does, judged by the shipped classifier. The README reports 1,000 samples
/// (`scripts/shapes-model-eval.sh`); 40 are a regression check of the model, the x0 chain and the
/// classifier together, with a floor well under the measured share.
final class ShippedShapesModelTests: XCTestCase {
    func testShippedModelDrawsItsConditioningClass() throws {
        let root = Fixtures.packageRoot.appendingPathComponent("models").path
        let model = try DiT.load(path: root + "/shapes-dit/ema.safetensors")
        XCTAssertEqual(model.config.prediction, .xStart)
        XCTAssertFalse(model.config.learnSigma)
        let classifier = try ShapeClassifier.load(path: root + "/shapes-classifier/classifier.safetensors")
        let n = 40
        let engine = try SampleEngine.standard(
            model: model, settings: SamplerSettings(kind: .ddim, cfgScale: 3, clipDenoised: true,
                                                    batching: .perSample(workers: 2)),
            steps: 25, seed: 0, labels: .balanced, total: n)
        let (x, labels) = try engine.generate(indices: Array(0..<n), batchSize: n)
        XCTAssertEqual(Set(labels), [0, 1, 2, 3])
        let pixels = SampleQuantizer.uint8NHWC(x), per = 32 * 32 * 3
        var correct = 0
        for i in 0..<n {
            let image = try ImageRGB8(width: 32, height: 32, pixels: Array(pixels[(i * per)..<((i + 1) * per)]))
            if classifier.predict(image) == labels[i] { correct += 1 }
        }
        print("shipped shapes model: \(correct) of \(n) samples show their conditioning class")
        XCTAssertGreaterThanOrEqual(correct, 30, "class-conditional accuracy \(correct)/\(n)")
    }
}
