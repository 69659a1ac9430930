import Foundation
import PipelineTensor
import PipelineFiles

/// A tensor source of deterministic random tensors, read by the same strict `StateDict`
/// loaders as a checkpoint: a fixed list of keys and shapes (a model's random-weight spec),
/// each float32 tensor drawn on demand by its entry's `draw`. A draw depends only on its
/// entry (its position in the model's random stream is fixed when the spec is made), so
/// tensors may be read in any order, and only one is materialised at a time.
public final class RandomTensorSource: TensorSource {
    public struct Entry {
        public let key: String
        public let shape: [Int]
        /// Writes the tensor's `shape.product` values.
        public let draw: (UnsafeMutablePointer<Float>) -> Void

        public init(key: String, shape: [Int], draw: @escaping (UnsafeMutablePointer<Float>) -> Void) {
            self.key = key
            self.shape = shape
            self.draw = draw
        }
    }

    public let sourceName: String
    public let keys: [String]
    private let entries: [String: Entry]

    /// `name` is what errors call the source (e.g. "random DiT-S/2 seed 0").
    public init(name: String, entries: [Entry]) throws {
        sourceName = name
        keys = entries.map(\.key)
        var byKey = [String: Entry]()
        for e in entries {
            guard byKey.updateValue(e, forKey: e.key) == nil else {
                throw WeightError.malformed(file: name, reason: "the random-weight spec lists \"\(e.key)\" twice")
            }
        }
        self.entries = byKey
    }

    public func info(_ key: String) -> TensorInfo? {
        entries[key].map { TensorInfo(dtype: .f32, shape: $0.shape) }
    }

    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        guard let e = entries[key] else { throw WeightError.missingKey(file: sourceName, key: key) }
        let t = Tensor(uninitialized: e.shape)
        e.draw(t.data)
        return try withExtendedLifetime(t) { try body(UnsafeRawPointer(t.data)) }
    }
}
