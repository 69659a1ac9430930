import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiT
@testable import PipelineDiffusion

/// ../shared/fixtures/samplers/tiny: diffusers' DPM-Solver++ (2M, 2M Karras, 3M), UniPC, Euler,
/// Heun and DDIM driven as `DiTPipeline` drives them, with the model dit/tiny, at 10 and 20
/// steps: final latents within 1e-3 of their largest value, model-call timesteps within 1e-9.
final class SchedulerFixtureTests: XCTestCase {
    func testEverySamplerAndStepCountMatchesDiffusers() throws {
        let io = try SafeTensorsFile(path: try Fixtures.require("samplers/tiny/io.safetensors"))
        let model = try DiT.load(path: try Fixtures.require("dit/tiny/weights.safetensors"),
                                 configFile: try Fixtures.require("dit/tiny/config.json"))
        let out = try SchedulerEval.run(model: model, inputs: io)
        let dir = Fixtures.tempDir("sampler-eval")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try out.write(to: dir + "/out.safetensors")
        let got = try SafeTensorsFile(path: dir + "/out.safetensors")
        let names = (io.metadata["samplers"] ?? "").split(separator: ",").map(String.init)
        XCTAssertEqual(Set(names), Set(SchedulerPreset.allCases.map(\.rawValue)), "the fixture covers every preset")
        for name in names {
            for steps in [10, 20] {
                let key = "\(name)_\(steps)"
                let expected = try io.tensor(key)
                let actual = try got.tensor(key)
                XCTAssertEqual(actual.shape, expected.shape, key)
                var worst: Float = 0
                for i in 0..<expected.count { worst = max(worst, abs(actual.data[i] - expected.data[i])) }
                XCTAssertLessThanOrEqual(worst / expected.maxAbs, 1e-3, "\(key): max abs diff \(worst) of \(expected.maxAbs)")
                let t = try got.doubles(key + "_timesteps"), te = try io.doubles(key + "_timesteps")
                XCTAssertEqual(t.count, te.count, key + "_timesteps")
                for (a, b) in zip(t, te) { XCTAssertEqual(a, b, accuracy: 1e-9, key + "_timesteps") }
            }
            // The recorded config round-trips: the output's config equals the input's once parsed.
            var a = SchedulerPreset(rawValue: name)!.config, b = a
            try a.apply(jsonData: Data((io.metadata[name + "_config"] ?? "{}").utf8), source: "fixture")
            try b.apply(jsonData: Data((got.metadata[name + "_config"] ?? "{}").utf8), source: "output")
            XCTAssertEqual(a, b, name + "_config")
        }
    }
}
