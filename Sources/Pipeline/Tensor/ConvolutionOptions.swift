/// How the convolution kernels run on the current call path: a value, not a process-wide
/// switch. A model holds its own options (`VAEOptions`, `InceptionOptions`, given at
/// construction) and binds them around its forward pass with `run(_:)`; the binding is
/// task-local, so models with different options can run side by side on other threads.
public struct ConvolutionOptions: Sendable, Equatable {
    /// Winograd where a kernel has a fast algorithm (F(4x4, 3x3) for 3×3 stride 1, 1-D
    /// Winograd for 1×3, 3×1, 1×7, 7×1, 5×5 as five 1×5 rows). Off: every convolution is
    /// im2col + sgemm, the reference arithmetic (the fast ones differ by a few 1e-6 relative).
    public var fastAlgorithms: Bool
    /// Bound, in floats, on a `Winograd.conv3x3` chunk's transformed input plus output.
    public var winogradChunkBudget: Int
    /// Bound, in floats, on a `PlanarConvolution` fast convolution's transformed input and
    /// output per chunk: small enough to stay in the last-level cache between the transforms
    /// and the GEMMs.
    public var planarChunkBudget: Int

    public init(fastAlgorithms: Bool = true, winogradChunkBudget: Int = 6 << 20, planarChunkBudget: Int = 1 << 20) {
        self.fastAlgorithms = fastAlgorithms
        self.winogradChunkBudget = winogradChunkBudget
        self.planarChunkBudget = planarChunkBudget
    }

    public static let standard = ConvolutionOptions()

    /// The options bound on this call path (`standard` where none are).
    @TaskLocal public static var current = ConvolutionOptions.standard

    /// Runs `body` with these options bound for the kernels it calls on this thread.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        try ConvolutionOptions.$current.withValue(self, operation: body)
    }
}
