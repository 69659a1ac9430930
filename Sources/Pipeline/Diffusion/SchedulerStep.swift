import Foundation
import PipelineTensor

/// A diffusers scheduler after `set_timesteps(steps)`: the timestep of every model call, the
/// initial noise scale, `scale_model_input`, and a fresh stepping state per batch.
///
/// Each scheduler's arithmetic on samples is float32, element by element, in diffusers'
/// operation order (scalar coefficients are 0-d float32 tensors there, so they are formed in
/// float32 first); nothing couples rows, so a batch gives each row what it alone would get.
public protocol DiffusersScheduler {
    var config: SchedulerConfig { get }
    /// The `t` passed to the model at each call, in order (Heun: 2·steps - 1 calls).
    var callTimesteps: [Double] { get }
    /// `init_noise_sigma`: z_T is scaled by it.
    var initNoiseSigma: Float { get }
    /// The divisor `scale_model_input` applies before call `i`, or nil for none.
    func inputDivisor(call i: Int) -> Float?
    /// A new state for one batch, at the first call.
    func makeState() -> SchedulerState
}

extension DiffusersScheduler {
    /// The multistep schedulers and DDIM: z_T unscaled, no `scale_model_input`.
    public var initNoiseSigma: Float { 1 }
    public func inputDivisor(call i: Int) -> Float? { nil }
}

/// The per-batch state of a scheduler's `step`.
public protocol SchedulerState: AnyObject {
    /// `step(eps, t, sample).prev_sample` for model call `call`.
    func step(eps: Tensor, call: Int, sample: Tensor) throws -> Tensor
}

extension SchedulerConfig {
    /// `set_timesteps(steps)` of this config's scheduler class.
    public func scheduler(steps: Int) throws -> DiffusersScheduler {
        guard steps > 0 else { throw DiffusionError.invalidArgument("sampling steps must be positive, got \(steps)") }
        switch scheduler {
        case .dpmSolverMultistep: return try DPMSolverMultistep(config: self, steps: steps)
        case .uniPCMultistep: return try UniPCMultistep(config: self, steps: steps)
        case .eulerDiscrete: return try EulerDiscrete(config: self, steps: steps)
        case .heunDiscrete: return try HeunDiscrete(config: self, steps: steps)
        case .ddim: return try DDIMDiffusers(config: self, steps: steps)
        }
    }
}

/// Element-wise float32 tensor arithmetic in a given operation order (no fused multiply-add,
/// as PyTorch's eager CPU ops round after each op).
enum SchedulerMath {
    static func map(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        let p = a.data, o = out.data
        for i in 0..<a.count { o[i] = f(p[i]) }
        return out
    }

    static func map(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        try same(a, b)
        let out = Tensor(uninitialized: a.shape)
        let p = a.data, q = b.data, o = out.data
        for i in 0..<a.count { o[i] = f(p[i], q[i]) }
        return out
    }

    static func map(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) throws -> Tensor {
        try same(a, b)
        try same(a, c)
        let out = Tensor(uninitialized: a.shape)
        let p = a.data, q = b.data, r = c.data, o = out.data
        for i in 0..<a.count { o[i] = f(p[i], q[i], r[i]) }
        return out
    }

    static func same(_ a: Tensor, _ b: Tensor) throws {
        guard a.shape == b.shape else { throw DiffusionError.shapeMismatch(what: "scheduler step operand", expected: a.shape, found: b.shape) }
    }
}

/// `_sigma_to_alpha_sigma_t` and the log-SNR, in float32 as diffusers' 0-d tensors:
/// alpha = 1 / sqrt(sigma² + 1), sigma_t = sigma · alpha, lambda = log(alpha) - log(sigma_t).
struct AlphaSigma {
    let alpha: Float
    let sigma: Float
    let lambda: Float

    init(_ s: Float) {
        alpha = 1 / (s * s + 1).squareRoot()
        sigma = s * alpha
        lambda = Foundation.log(alpha) - Foundation.log(sigma)
    }
}
