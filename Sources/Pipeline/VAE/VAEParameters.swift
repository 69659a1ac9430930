import Foundation
import PipelineTensor
import PipelineWeights

/// Where the VAE's modules get their tensors: a strict `StateDict` over a checkpoint, or
/// `RandomVAEParameters` for benchmarks. Keys are diffusers' state-dict names.
public protocol VAEParameters: AnyObject {
    /// The view whose keys are prefixed with `name.`.
    func child(_ name: String) -> VAEParameters
    func has(_ key: String) -> Bool
    func shape(_ key: String) -> [Int]?
    func take(_ key: String, shape: [Int]) throws -> Tensor
}

extension StateDict: VAEParameters {
    public func child(_ name: String) -> VAEParameters { scope(name) }
}

/// Random parameters with the shapes the modules ask for (seeded, deterministic):
/// weights uniform in ±1/√fan_in as PyTorch initialises convolutions and linears,
/// norm scales near 1. Every tensor handed out is kept, so a benchmark model can be
/// written out as a checkpoint.
public final class RandomVAEParameters: VAEParameters {
    private let prefix: String
    private let root: Store

    final class Store {
        var rng: SplitMix64
        var tensors: [(String, Tensor)] = []
        init(seed: UInt64) { rng = SplitMix64(seed: seed &* SplitMix64.gamma | 1) }
        /// Uniform [0, 1).
        func next() -> Float { rng.unitFloat() }
    }

    public init(seed: UInt64 = 0) {
        prefix = ""
        root = Store(seed: seed)
    }

    private init(prefix: String, root: Store) {
        self.prefix = prefix
        self.root = root
    }

    /// Every (key, tensor) handed out so far, in order.
    public var tensors: [(String, Tensor)] { root.tensors }

    public func child(_ name: String) -> VAEParameters { RandomVAEParameters(prefix: prefix + name + ".", root: root) }
    public func has(_ key: String) -> Bool { false }
    public func shape(_ key: String) -> [Int]? { nil }

    public func take(_ key: String, shape: [Int]) throws -> Tensor {
        let t = Tensor(uninitialized: shape)
        let full = prefix + key
        let isNormScale = shape.count == 1 && key.hasSuffix("weight")
        let bound: Float = shape.count > 1 ? 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot() : 0.1
        for i in 0..<t.count {
            let u = root.next() * 2 - 1
            t.data[i] = isNormScale ? 1 + 0.1 * u : bound * u
        }
        root.tensors.append((full, t))
        return t
    }
}
