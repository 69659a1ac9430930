import Foundation
import PipelineTensor
import PipelineFiles

/// How a model family draws a random tensor for a state-dict key: its distribution per kind
/// of tensor (by key and shape) and its own random stream, advanced in the order the model's
/// loader asks for the keys.
public protocol RandomTensorInitializer {
    mutating func draw(_ key: String, shape: [Int]) -> Tensor
}

/// A `TensorSource` that holds whatever tensor the loader asks for, drawn at random: random
/// weights (benchmarks, tests, the `random:SEED` proxy Inception, a training run's
/// initialisation) come through the same strict loading path (`StateDict`, the models'
/// state-dict initialisers) as a checkpoint. It lists no keys, so `StateDict.finish()` finds
/// nothing unused; it contains no key, so optional tensors (`takeIfPresent`) stay absent and
/// the model computes them as it does for a checkpoint without them. Each tensor is drawn
/// when first asked for with its shape, and kept (`drawn`), so a random model can be written
/// out as a checkpoint.
public final class RandomTensorSource: TensorSource {
    public let sourceName: String
    private var initializer: any RandomTensorInitializer
    private var byKey: [String: Tensor] = [:]
    /// Every tensor drawn so far, in the order asked for.
    public private(set) var drawn: [(String, Tensor)] = []
    private let lock = NSLock()

    public init(name: String, initializer: any RandomTensorInitializer) {
        sourceName = name
        self.initializer = initializer
    }

    public var keys: [String] { [] }
    public func info(_ key: String) -> TensorInfo? { nil }

    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        throw WeightError.missingKey(file: sourceName, key: key + " (a random source draws a tensor only for a given shape)")
    }

    /// The tensor for `key` with `shape`: drawn now, or the one drawn for it before.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let t = byKey[key] {
            guard t.shape == shape else {
                throw WeightError.shapeMismatch(file: sourceName, key: key, expected: shape, found: t.shape)
            }
            return t
        }
        let t = initializer.draw(key, shape: shape)
        byKey[key] = t
        drawn.append((key, t))
        return t
    }
}
