import PipelineTensor

/// How a `FIDInceptionV3` runs, given at construction (never a process-wide switch).
public struct InceptionOptions: Sendable, Equatable {
    /// Winograd for 3×3 stride-1, 1×7/7×1, 1×3/3×1 and 5×5 convolutions; off: im2col + sgemm
    /// for every convolution (`--no-fast-conv`; differences ~1e-7 relative).
    public var fastConvolutions: Bool
    /// Bound, in floats, on a fast convolution's transformed input and output per chunk.
    public var fastChunkBudget: Int

    public init(fastConvolutions: Bool = true, fastChunkBudget: Int = ConvolutionOptions.standard.planarChunkBudget) {
        self.fastConvolutions = fastConvolutions
        self.fastChunkBudget = fastChunkBudget
    }

    public static let standard = InceptionOptions()

    /// The kernel options the model binds around its forward pass.
    var convolutions: ConvolutionOptions {
        ConvolutionOptions(fastAlgorithms: fastConvolutions, planarChunkBudget: fastChunkBudget)
    }
}
