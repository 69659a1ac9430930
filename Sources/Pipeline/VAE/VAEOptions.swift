import PipelineTensor

/// How an `AutoencoderKL` runs, given at construction (never a process-wide switch: two
/// models with different options can run side by side).
public struct VAEOptions: Sendable, Equatable {
    /// 3x3 stride-1 convolutions (with at least `VAEConv2d.winogradMinChannels` inputs)
    /// through Winograd F(4x4, 3x3); off: im2col + sgemm (`--no-winograd`).
    public var winograd: Bool
    /// Bound, in floats, on a Winograd chunk's transformed input plus output (`--winograd-budget`).
    public var winogradChunkBudget: Int
    /// Largest image (H·W) accepted, to refuse absurd inputs before allocating: a 2048² decode
    /// peaks near 16× the 512² figure (about 10 GiB with the SD VAE).
    public var maxPixels: Int

    public init(winograd: Bool = true, winogradChunkBudget: Int = ConvolutionOptions.standard.winogradChunkBudget,
                maxPixels: Int = 2048 * 2048) {
        self.winograd = winograd
        self.winogradChunkBudget = winogradChunkBudget
        self.maxPixels = maxPixels
    }

    public static let standard = VAEOptions()

    /// The kernel options the model binds around its forward passes.
    var convolutions: ConvolutionOptions {
        ConvolutionOptions(fastAlgorithms: winograd, winogradChunkBudget: winogradChunkBudget)
    }
}
