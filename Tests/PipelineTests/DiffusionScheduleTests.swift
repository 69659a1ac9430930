import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineDiffusion

final class DiffusionScheduleTests: XCTestCase {
    func testLinearBetasMatchNumpy() throws {
        let b = try NoiseSchedule.linear.betas(steps: 1000)
        // np.linspace(1e-4, 0.02, 1000, dtype=np.float64) and np.cumprod(1 - b).
        XCTAssertEqual(b[0], 1e-4)
        XCTAssertEqual(b[1], 0.00011991991991991993)
        XCTAssertEqual(b[500], 0.010059959959959959)
        XCTAssertEqual(b[999], 0.02)
        let d = try GaussianDiffusion(betas: b)
        XCTAssertEqual(d.alphasCumprod[999], 4.035829765375676e-05, accuracy: 1e-19)
        XCTAssertEqual(d.sqrtAlphasCumprod[999], 0.006352818087570016, accuracy: 1e-18)
        let b250 = try NoiseSchedule.linear.betas(steps: 250)
        XCTAssertEqual(b250[0], 4e-4, accuracy: 1e-18)
        XCTAssertEqual(b250[249], 0.08, accuracy: 1e-17)
    }

    func testCosineBetas() throws {
        let b = try NoiseSchedule.cosine.betas(steps: 1000)
        XCTAssertEqual(b.count, 1000)
        XCTAssertEqual(b[999], 0.999)  // capped
        XCTAssertTrue(zip(b, b.dropFirst()).allSatisfy { $0 <= $1 })
        XCTAssertEqual(try NoiseSchedule(parsing: "squaredcos_cap_v2"), .cosine)
        XCTAssertThrowsError(try NoiseSchedule(parsing: "quadratic"))
    }

    /// Reference quirk: schedule arrays are float64 and cast to float32 per use
    /// (`_extract_into_tensor`). Computing the schedule in float32 gives other
    /// coefficients, so the cast point matters.
    func testCoefficientsAreFloat64CastPerUse() throws {
        let d = try GaussianDiffusion(betas: try NoiseSchedule.linear.betas(steps: 1000))
        var differs = 0
        var acp32: Float = 1
        for t in 0..<1000 {
            acp32 *= 1 - Float(d.betas[t])
            let c = GaussianDiffusion.coefficient(d.sqrtAlphasCumprod, t)
            XCTAssertEqual(c, Float(d.alphasCumprod[t].squareRoot()))
            if c != acp32.squareRoot() { differs += 1 }
        }
        XCTAssertGreaterThan(differs, 100)
        // q_sample: c1 x0 + c2 eps with the float32-cast coefficients.
        let x0 = Tensor(shape: [2, 1], values: [0.5, -1.25]), eps = Tensor(shape: [2, 1], values: [1, 2])
        let xt = try d.qSample(x0, t: [0, 999], noise: eps)
        XCTAssertEqual(xt.values[1], Float(d.sqrtAlphasCumprod[999]) * -1.25 + Float(d.sqrtOneMinusAlphasCumprod[999]) * 2)
        XCTAssertThrowsError(try d.qSample(x0, t: [0, 1000], noise: eps))
    }

    func testRespacingParsesAndSpaces() throws {
        XCTAssertEqual(try Respacing(parsing: "250"), .sections([250]))
        XCTAssertEqual(try Respacing(parsing: "10,10,10"), .sections([10, 10, 10]))
        XCTAssertEqual(try Respacing(parsing: "ddim50"), .ddim(50))
        XCTAssertEqual(try Respacing(parsing: "10").timesteps(of: 1000),
                       [0, 111, 222, 333, 444, 555, 666, 777, 888, 999])
        XCTAssertEqual(try Respacing(parsing: "ddim10").timesteps(of: 1000), Array(stride(from: 0, to: 1000, by: 100)))
        XCTAssertEqual(try Respacing(parsing: "ddim50").timesteps(of: 1000).count, 50)
        // space_timesteps(300, [10, 15, 20]) per the reference's docstring: 45 steps.
        let s = try Respacing.sections([10, 15, 20]).timesteps(of: 300)
        XCTAssertEqual(s.count, 45)
        XCTAssertEqual(Array(s.prefix(3)), [0, 11, 22])
        // Python's round() is half-to-even: 4 steps of 10 → stride 3, [0, 3, 6, 9];
        // 3 of 6 → stride 2.5 → round(2.5) = 2.
        XCTAssertEqual(try Respacing.sections([3]).timesteps(of: 6), [0, 2, 5])
        XCTAssertEqual(try Respacing(parsing: "1000").timesteps(of: 1000), Array(0..<1000))
    }

    func testRespacingErrors() {
        for bad in ["", "abc", "ddim", "ddimx", "10,,3", "-5", "0", "ddim0"] {
            XCTAssertThrowsError(try Respacing(parsing: bad), bad) { XCTAssertTrue("\($0)".contains("respacing")) }
        }
        XCTAssertThrowsError(try Respacing(parsing: "1001").timesteps(of: 1000)) {
            XCTAssertTrue("\($0)".contains("cannot divide"), "\($0)")
        }
        XCTAssertThrowsError(try Respacing(parsing: "600,600").timesteps(of: 1000))
        XCTAssertThrowsError(try Respacing(parsing: "ddim600").timesteps(of: 1000)) {
            XCTAssertTrue("\($0)".contains("integer stride"), "\($0)")
        }
    }

    /// The fixture's float64 betas and timestep maps of both respaced chains.
    func testFixtureRespacedChains() throws {
        let io = try SafeTensorsFile(path: try Fixtures.require("diffusion/tiny/io.safetensors"))
        for (key, spacing) in [("respaced", io.metadata["respacing"] ?? ""), ("ddim", io.metadata["ddim_respacing"] ?? "")] {
            let d = try GaussianDiffusion.create(respacing: try Respacing(parsing: spacing), diffusionSteps: 1000)
            XCTAssertEqual(d.timestepMap.map(Int64.init), try io.int64s("\(key)_timestep_map"), key)
            let want = try io.doubles("\(key)_betas")
            XCTAssertEqual(d.betas.count, want.count)
            for (a, b) in zip(d.betas, want) { XCTAssertEqual(a, b, accuracy: 1e-15 * max(1, abs(b)), key) }
        }
    }

    func testFixtureQSample() throws {
        let io = try SafeTensorsFile(path: try Fixtures.require("diffusion/tiny/io.safetensors"))
        let d = try GaussianDiffusion.create(respacing: nil, diffusionSteps: 1000)
        let xt = try d.qSample(try io.tensor("x0"), t: try io.int64s("t").map { Int($0) }, noise: try io.tensor("noise"))
        assertClose(xt, try io.tensor("x_t"), tol: 1e-4, "x_t")
        assertClose(xt, try io.tensor("x_t"), tol: 1e-6, "x_t (tight)")
    }
}
