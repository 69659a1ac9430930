import XCTest
@testable import PipelineTensor
@testable import PipelineDiffusion

/// The diffusers schedulers' schedule rules and reference quirks, against values NumPy itself
/// computed (hard-coded below with the expression that made them), for configurations the
/// fixture does not record.
final class SchedulerScheduleTests: XCTestCase {
    func config(_ preset: SchedulerPreset, _ json: String = "{}") throws -> SchedulerConfig {
        var c = preset.config
        try c.apply(jsonData: Data(json.utf8), source: "test")
        return c
    }

    /// Quirk: NumPy's arange fills element i >= 2 as start + i·((start + step) - start).
    func testArangeUsesNumPysDelta() {
        // np.arange(1000, 0, -1000/3)[2].hex() == '0x1.4d55555555558p+8'
        let a = SchedulerNumPy.arange(1000, 0, -1000.0 / 3)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a[2], Double(hexString: "0x1.4d55555555558p+8"))
        XCTAssertNotEqual(a[2], 1000 + 2 * (-1000.0 / 3))
        // lengths: ceil((stop - start) / step), as np.arange(1000, 0, -1000/n)
        for n in [3, 6, 7, 11, 13, 30] { XCTAssertEqual(SchedulerNumPy.arange(1000, 0, -1000.0 / Double(n)).count, n) }
    }

    func testTimestepSpacingsMatchNumPy() throws {
        // DPM-Solver / UniPC: np.linspace(0, 999, n + 1).round()[::-1][:-1] and
        // np.arange(1000, 0, -1000/n).round() - 1; leading: (1000 // (n + 1)) · k + steps_offset.
        XCTAssertEqual(try DPMSolverMultistep(config: config(.dpmpp2m), steps: 7).timesteps, [999, 856, 714, 571, 428, 285, 143])
        XCTAssertEqual(try DPMSolverMultistep(config: config(.dpmpp2m, #"{"timestep_spacing": "trailing"}"#), steps: 7).timesteps,
                       [999, 856, 713, 570, 428, 285, 142])
        XCTAssertEqual(try UniPCMultistep(config: config(.unipc, #"{"timestep_spacing": "leading", "steps_offset": 1}"#), steps: 10).timesteps,
                       [901, 811, 721, 631, 541, 451, 361, 271, 181, 91])
        // Euler: np.linspace(0, 999, n, dtype=float32)[::-1]; trailing: arange(...).round().astype(float32) - 1.
        XCTAssertEqual(try EulerDiscrete(config: config(.euler), steps: 7).timesteps, [999, 832.5, 666, 499.5, 333, 166.5, 0])
        XCTAssertEqual(try EulerDiscrete(config: config(.euler, #"{"timestep_spacing": "trailing"}"#), steps: 7).timesteps,
                       [999, 856, 713, 570, 428, 285, 142])
        XCTAssertEqual(try EulerDiscrete(config: config(.euler, #"{"timestep_spacing": "leading", "steps_offset": 1}"#), steps: 4).timesteps,
                       [751, 501, 251, 1])
        // DDIM: np.linspace(0, 999, n).round()[::-1] (half to even: 499.5 -> 500, 832.5 -> 832).
        XCTAssertEqual(try DDIMDiffusers(config: config(.ddimDiffusers, #"{"timestep_spacing": "linspace"}"#), steps: 7).timesteps,
                       [999, 832, 666, 500, 333, 166, 0])
        XCTAssertEqual(try DDIMDiffusers(config: config(.ddimDiffusers, #"{"timestep_spacing": "trailing"}"#), steps: 7).timesteps,
                       [999, 856, 713, 570, 428, 285, 142])
        XCTAssertEqual(try DDIMDiffusers(config: config(.ddimDiffusers, #"{"steps_offset": 1}"#), steps: 4).timesteps, [751, 501, 251, 1])
    }

    func testInterpAndSigmaToTMatchNumPy() {
        // fp = np.cumsum(np.linspace(0.01, 0.3, 50)).astype(np.float32).astype(np.float64)
        var run = 0.0
        let fp = SchedulerNumPy.linspace(0.01, 0.3, 50).map { run += $0; return Double(Float(run)) }
        let xs = [0.0, 3.3000001907348633, 17.5, 48.99, 49.0, 12.123456789]
        let expected = ["0x1.47ae140000000p-7", "0x1.5eaaf3ec90a00p-4", "0x1.24ce790000000p+0", "0x1.efced9147ae15p+2",
                        "0x1.f000000000000p+2", "0x1.34694bacfcf87p-1"]
        for (x, e) in zip(xs, expected) { XCTAssertEqual(SchedulerNumPy.interp(x, fp), Double(hexString: e), "interp(\(x))") }
        // Quirk: low - high in float32. log_sigmas = np.linspace(-3, 4, 50).astype(np.float32),
        // expected = diffusers' _sigma_to_t(sigma, log_sigmas).
        let logSigmas = SchedulerNumPy.linspace(-3, 4, 50).map { Float($0) }
        let sigmas = [0.01, 0.05, 0.3, 1.0, 7.5, 54.0, 100.0]
        let ts = ["0x0.0p+0", "0x1.e9750df1e0b79p-6", "0x1.924f62801bf04p+3", "0x1.5000000000000p+4", "0x1.18d5a65994464p+5",
                  "0x1.876213415f1f6p+5", "0x1.8800000000000p+5"]
        for (s, e) in zip(sigmas, ts) { XCTAssertEqual(SchedulerNumPy.sigmaToT(s, logSigmas: logSigmas), Double(hexString: e), "sigma \(s)") }
    }

    func testKarrasSpacingMatchesNumPy() {
        // (max_inv + np.linspace(0, 1, 10) * (min_inv - max_inv)) ** 7 with min 0.0292, max 157.4
        let expected = ["0x1.3acccccccccc9p+7", "0x1.631b76e91d678p+6", "0x1.7ca2f92e371e1p+5", "0x1.7fd57656e5721p+4",
                        "0x1.67551b7a413acp+3", "0x1.32b0b5e27d0bfp+2", "0x1.d130c26e941b0p+0", "0x1.2dc3884e761c2p-1",
                        "0x1.3b4b10b77d467p-3", "0x1.de69ad42c3ca0p-6"]
        for (a, e) in zip(SchedulerNumPy.karras(sigmaMin: 0.0292, sigmaMax: 157.4, 10), expected) {
            XCTAssertEqual(a, Double(hexString: e)!, accuracy: abs(a) * 1e-15)
        }
    }

    /// Quirks: betas from a float32 torch.linspace; cumprod accumulated in float64.
    func testTrainingScheduleIsFloat32WithDoubleAccumulatedCumprod() throws {
        let s = try SchedulerTrainingSchedule(SchedulerConfig(scheduler: .eulerDiscrete))
        XCTAssertEqual(s.betas.count, 1000)
        XCTAssertEqual(s.betas[0], Float(0.0001))
        XCTAssertEqual(s.betas[999], Float(0.02))
        // The second half is end - step·(n - 1 - i) in float32 (here i = 998, a scalar tail element).
        let step = (Float(0.02) - Float(0.0001)) / 999
        XCTAssertEqual(s.betas[998], Float(0.02) - step * 1)
        var run = 1.0, run32: Float = 1
        var differs = false
        for (i, b) in s.betas.enumerated() {
            run *= Double(1 - b)
            run32 *= 1 - b
            XCTAssertEqual(s.alphasCumprod[i], Float(run))
            if Float(run) != run32 { differs = true }
        }
        XCTAssertTrue(differs, "a float32 running product would differ")
    }

    func testDPMSolverOrderRules() throws {
        var c = try config(.dpmpp3m)
        // warm-up: 1, 2, then 3
        XCTAssertEqual((0..<4).map { DPMSolverMultistep.order(step: $0, of: 20, warm: $0, c) }, [1, 2, 3, 3])
        // 20 steps, final sigma zero: only the last step is lowered (to 1)
        XCTAssertEqual(DPMSolverMultistep.order(step: 18, of: 20, warm: 3, c), 3)
        XCTAssertEqual(DPMSolverMultistep.order(step: 19, of: 20, warm: 3, c), 1)
        // 10 steps (< 15): the last two are lowered
        XCTAssertEqual(DPMSolverMultistep.order(step: 8, of: 10, warm: 3, c), 2)
        // final sigma = sigma_min and 20 steps: no lowering at all
        c.finalSigmas = .sigmaMin
        XCTAssertEqual(DPMSolverMultistep.order(step: 19, of: 20, warm: 3, c), 3)
        XCTAssertEqual(DPMSolverMultistep.order(step: 9, of: 10, warm: 3, c), 1)
        // UniPC lowers at any step count
        var u = try config(.unipc, #"{"solver_order": 3}"#)
        XCTAssertEqual((17..<20).map { UniPCMultistep.order(step: $0, of: 20, warm: 3, u) }, [3, 2, 1])
        u.lowerOrderFinal = false
        XCTAssertEqual(UniPCMultistep.order(step: 19, of: 20, warm: 3, u), 3)
    }

    func testSigmaSpacingQuirks() throws {
        // DPM-Solver Karras timesteps are rounded integers; exponential ones truncated to int64.
        let k = try DPMSolverMultistep(config: config(.dpmpp2mKarras), steps: 12)
        XCTAssertTrue(k.timesteps.allSatisfy { $0 == $0.rounded() })
        XCTAssertEqual(k.sigmas.count, 13)
        XCTAssertEqual(k.sigmas.last, 0)
        let e = try DPMSolverMultistep(config: config(.dpmpp2m, #"{"use_exponential_sigmas": true}"#), steps: 12)
        let schedule = try SchedulerTrainingSchedule(SchedulerConfig(scheduler: .dpmSolverMultistep))
        let raw = e.sigmas.dropLast().map { SchedulerNumPy.sigmaToT(Double($0), logSigmas: schedule.logSigmas) }
        XCTAssertTrue(zip(e.timesteps, raw).contains { $0 != $1.rounded() && $0 == $1.rounded(.towardZero) } || e.timesteps.count == 12)
        // UniPC Karras with sigma_min final: the last spaced sigma, not the training sigma at t = 0.
        let u = try UniPCMultistep(config: config(.unipc, #"{"use_karras_sigmas": true, "final_sigmas_type": "sigma_min"}"#), steps: 8)
        XCTAssertEqual(u.sigmas[8], u.sigmas[7])
        let d = try DPMSolverMultistep(config: config(.dpmpp2m, #"{"final_sigmas_type": "sigma_min"}"#), steps: 8)
        XCTAssertEqual(d.sigmas[8], schedule.sigmas[0])
        // Euler / Heun Karras timesteps stay fractional float32.
        let h = try HeunDiscrete(config: config(.heun, #"{"use_karras_sigmas": true}"#), steps: 6)
        XCTAssertTrue(h.timesteps.contains { $0 != $0.rounded() })
        XCTAssertTrue(h.timesteps.allSatisfy { Double(Float($0)) == $0 })
    }

    func testEulerAndHeunQuirks() throws {
        // init_noise_sigma: the top sigma for linspace, sqrt(top² + 1) for leading.
        let lin = try EulerDiscrete(config: config(.euler), steps: 10)
        XCTAssertEqual(lin.initNoiseSigma, lin.sigmas[0])
        let lead = try EulerDiscrete(config: config(.euler, #"{"timestep_spacing": "leading"}"#), steps: 10)
        XCTAssertEqual(lead.initNoiseSigma, (lead.sigmas[0] * lead.sigmas[0] + 1).squareRoot())
        // log_linear: n + 1 spaced sigmas plus the final one, so the last step ends at the smallest spaced sigma.
        let ll = try EulerDiscrete(config: config(.euler, #"{"interpolation_type": "log_linear"}"#), steps: 10)
        XCTAssertEqual(ll.sigmas.count, 12)
        XCTAssertGreaterThan(ll.sigmas[10], 0)
        // Heun: timesteps t0, t1, t1, ..., sigmas s0, s1, s1, ..., 0 (2n - 1 calls).
        let h = try HeunDiscrete(config: config(.heun), steps: 5)
        let e = try EulerDiscrete(config: config(.euler), steps: 5)
        XCTAssertEqual(h.callTimesteps, [e.timesteps[0]] + e.timesteps.dropFirst().flatMap { [$0, $0] })
        XCTAssertEqual(h.sigmas, [e.sigmas[0]] + e.sigmas[1..<5].flatMap { [$0, $0] } + [0])
    }

    /// Quirk: DDIM's previous timestep is t - 1000 // n even for linspace spacing.
    func testDDIMStepsToTheFixedStride() throws {
        let d = try DDIMDiffusers(config: config(.ddimDiffusers, #"{"timestep_spacing": "linspace"}"#), steps: 7)
        let x = Tensor(shape: [1, 1, 1, 1], values: [2])
        let out = try d.makeState().step(eps: Tensor(zeros: [1, 1, 1, 1]), call: 0, sample: x)
        let a = d.alphasCumprod
        // from 999 to 999 - 142 = 857 (the schedule's next timestep is 832)
        XCTAssertEqual(out.values[0], a[857].squareRoot() * (2 / a[999].squareRoot()))
        // below t = 0 with set_alpha_to_one false: alphā_0
        let last = try d.makeState().step(eps: Tensor(zeros: [1, 1, 1, 1]), call: 6, sample: x)
        XCTAssertEqual(last.values[0], a[0].squareRoot() * (2 / a[0].squareRoot()))
    }

    func testConfigParsingErrorsNameTheOption() throws {
        for (json, key) in [(#"{"prediction_type": "v_prediction"}"#, "prediction_type"), (#"{"thresholding": true}"#, "thresholding"),
                            (#"{"timestep_spacing": "cosine"}"#, "timestep_spacing"), (#"{"solver_order": "two"}"#, "solver_order"),
                            (#"{"use_karras_sigmas": true, "use_exponential_sigmas": true}"#, "use_"), (#"{"use_beta_sigmas": true}"#, "use_beta_sigmas"),
                            (#"{"frobnicate": 1}"#, "frobnicate"), (#"{"lower_order_final": 1}"#, "lower_order_final")] {
            XCTAssertThrowsError(try config(.dpmpp2m, json), json) { XCTAssertTrue("\($0)".contains(key), "\($0)") }
        }
        XCTAssertThrowsError(try SamplerChoice(name: "dpm", schedulerConfigFile: nil)) { XCTAssertTrue("\($0)".contains("dpmpp2m")) }
        XCTAssertThrowsError(try SamplerChoice(name: "ddim", schedulerConfigFile: "x.json"))
        // diffusers' own config file (with _class_name of another scheduler and -Infinity) is accepted.
        let c = try config(.dpmpp2m, #"{"_class_name": "DDIMScheduler", "lambda_min_clipped": -Infinity, "timestep_spacing": "leading"}"#)
        XCTAssertEqual(c.timestepSpacing, .leading)
        XCTAssertEqual(c.lambdaMinClipped, -.infinity)
        // The recorded JSON round-trips.
        var back = SchedulerPreset.dpmpp2mKarras.config
        try back.apply(jsonData: Data(try config(.dpmpp2mKarras).jsonText.utf8), source: "round trip")
        XCTAssertEqual(back, try config(.dpmpp2mKarras))
    }

    func testGuidanceIntervalParsing() throws {
        let g = try GuidanceInterval(parsing: "0,700")
        XCTAssertTrue(g.contains(0) && g.contains(700) && g.contains(350.5))
        XCTAssertFalse(g.contains(700.5))
        XCTAssertEqual(g.description, "0,700")
        for bad in ["700", "a,b", "700,0", "1,2,3", ""] { XCTAssertThrowsError(try GuidanceInterval(parsing: bad), bad) }
    }
}

private extension Double {
    init?(hexString s: String) {
        guard let v = Double(s) else { return nil }
        self = v
    }
}
