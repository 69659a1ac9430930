import Foundation
import PipelineTensor
import PipelineFiles

/// Learns which tensors a model's loader takes, and in what order, by building the model
/// once: every `take` is recorded (full key, shape) and answered with zeros, and no optional
/// tensor is present. A random-weight spec made from it (`RandomTensorSource`) lists exactly
/// the keys and shapes the strict loader will ask for, in the order it asks, without a
/// second description of the module tree.
public final class ShapeProbe {
    /// Prepended to every key taken (as `StateDict.prefix`).
    public let prefix: String
    private let log: Log

    final class Log { var taken: [(key: String, shape: [Int])] = [] }

    public init() {
        prefix = ""
        log = Log()
    }

    private init(prefix: String, log: Log) {
        self.prefix = prefix
        self.log = log
    }

    /// Every (full key, shape) taken so far, in order.
    public var taken: [(key: String, shape: [Int])] { log.taken }

    /// A view that prefixes keys, as `StateDict.scope`.
    public func scope(_ name: String) -> ShapeProbe { ShapeProbe(prefix: prefix + name + ".", log: log) }

    /// Records `key` and returns zeros of `shape`.
    public func take(_ key: String, shape: [Int]) throws -> Tensor {
        log.taken.append((prefix + key, shape))
        return Tensor(zeros: shape)
    }
}
