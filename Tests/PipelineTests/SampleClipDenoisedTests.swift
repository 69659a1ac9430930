import XCTest
import CLIOptions
@testable import PipelineTensor
@testable import PipelineDiffusion
@testable import PipelineJobs

/// `--clip-denoised` (ADM's `clip_denoised=True`, the pixel-space setting): from the flag to the
/// sampler, in the single-process command and the distributed job's spec.
final class SampleClipDenoisedTests: XCTestCase {
    private func arguments(_ extra: [String]) throws -> SampleArguments {
        try SampleArguments.parse(["--dit", "m.safetensors", "--num-samples", "4", "--out", "o", "--sampler", "ddim"] + extra)
    }

    func testTheFlagReachesTheSettingsAndTheJobSpec() throws {
        XCTAssertFalse(try arguments([]).settings().clipDenoised)
        XCTAssertTrue(try arguments(["--clip-denoised"]).settings().clipDenoised)
        XCTAssertEqual(try arguments(["--clip-denoised"]).spec(samplesPerShard: 2).clipDenoised, true)
        let plain = try arguments([]).spec(samplesPerShard: 2)
        XCTAssertNil(plain.clipDenoised, "an unclipped job's spec (and recipe) stays as before")
        XCTAssertFalse(try plain.settings().clipDenoised)
        // The job's spec travels as JSON: the flag survives, and an older spec without it decodes as false.
        let clipped = try arguments(["--clip-denoised"]).spec(samplesPerShard: 2)
        let back = try JSONDecoder().decode(SampleSpec.self, from: try JSONEncoder().encode(clipped))
        XCTAssertTrue(try back.settings().clipDenoised)
        var json = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(plain)) as! [String: Any]
        json["clipDenoised"] = nil
        let old = try JSONDecoder().decode(SampleSpec.self, from: try JSONSerialization.data(withJSONObject: json))
        XCTAssertFalse(try old.settings().clipDenoised)
        // A diffusers scheduler clips by its own config: the flag is refused there, not ignored.
        let unipc = try SampleArguments.parse(["--dit", "m", "--num-samples", "1", "--out", "o", "--sampler", "unipc", "--clip-denoised"])
        XCTAssertThrowsError(try unipc.settings().validate())
    }

    /// DDIM's last step returns the predicted x0: clamped to [-1, 1] with the flag, not without
    /// (the stand-in model's eps leaves x0 far outside the data range).
    func testDDIMWithClippingStaysInTheDataRange() throws {
        let d = try GaussianDiffusion.create(respacing: try Respacing(parsing: "ddim10"), learnSigma: false)
        func run(_ clip: Bool) throws -> Tensor {
            let sampler = try DiffusionSampler(diffusion: d, settings: SamplerSettings(kind: .ddim, cfgScale: 1, clipDenoised: clip))
            return try sampler.sample(model: ClosedFormModel(learnsSigma: false), indices: [0, 1], labels: [1, 8], noise: PhiloxNoise(seed: 5))
        }
        let clipped = try run(true), free = try run(false)
        XCTAssertLessThanOrEqual(clipped.values.map(abs).max()!, 1)
        XCTAssertGreaterThan(free.values.map(abs).max()!, 1, "the test's model should leave the data range unclipped")
    }
}
