import PipelineTensor
/// A class-conditional denoiser as the diffusion code sees it: DiT, or any model
/// with the same contract (the tests use a small closed-form one).
public protocol NoisePredictionModel: AnyObject {
    /// Latent channels C.
    var inChannels: Int { get }
    /// Latent height = width.
    var inputSize: Int { get }
    /// Real classes; label `numClasses` is the null (unconditional) class.
    var numClasses: Int { get }
    /// Whether the output has 2C channels (eps, then the variance interpolation).
    var learnsSigma: Bool { get }
    /// Whether label `numClasses` (the null class of classifier-free guidance) exists.
    var supportsGuidance: Bool { get }
    /// Whether the first C output channels are x0 (`create_diffusion(predict_xstart=True)`)
    /// rather than the noise.
    var predictsXstart: Bool { get }
    /// `forward(x, t, y)`: x `[N, C, H, W]`, t (original-chain timesteps) and y of
    /// length N → `[N, outC, H, W]`.
    func forward(_ x: Tensor, t: [Float], y: [Int]) throws -> Tensor
    /// The reference's `forward_with_cfg(x, t, y, cfg_scale)`: x, t, y are the
    /// doubled batch (conditional labels, then `numClasses`); the model uses the
    /// first half of x for both halves and returns the guided output for all 2N rows.
    /// `guideAllChannels: false` is DiT's quirk of guiding only the first 3 channels.
    func forwardWithCFG(_ x: Tensor, t: [Float], y: [Int], scale: Float, guideAllChannels: Bool) throws -> Tensor
}

extension NoisePredictionModel {
    public var supportsGuidance: Bool { true }
    public var predictsXstart: Bool { false }
}
