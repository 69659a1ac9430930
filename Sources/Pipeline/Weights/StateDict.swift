import Foundation
import PipelineTensor
import PipelineFiles

/// Strict loading: every key a model asks for must exist with the right shape,
/// and every key in the source must be asked for (`finish()`), so a missing,
/// unknown or mis-shaped tensor is an error naming the key.
public final class StateDict {
    public let source: TensorSource
    /// Prepended to every key the model asks for (e.g. "encoder.").
    public let prefix: String
    private var used = Set<String>()
    private let parent: StateDict?

    public init(_ source: TensorSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
        self.parent = nil
    }

    private init(parent: StateDict, prefix: String) {
        self.source = parent.source
        self.prefix = prefix
        self.parent = parent
    }

    /// A view that prefixes keys (`sd.scope("blocks.3")` asks for "blocks.3.…").
    public func scope(_ name: String) -> StateDict {
        StateDict(parent: self, prefix: prefix + name + ".")
    }

    private func markUsed(_ full: String) {
        if let parent { parent.markUsed(full) } else { used.insert(full) }
    }

    public func has(_ key: String) -> Bool { source.contains(prefix + key) }

    public func shape(_ key: String) -> [Int]? { source.info(prefix + key)?.shape }

    /// Takes `key` with exactly `shape`.
    public func take(_ key: String, shape: [Int]) throws -> Tensor {
        let full = prefix + key
        let t = try source.tensor(full, shape: shape)
        markUsed(full)
        return t
    }

    /// Takes `key` with whatever shape it has.
    public func take(_ key: String) throws -> Tensor {
        let full = prefix + key
        let t = try source.tensor(full)
        markUsed(full)
        return t
    }

    /// Takes `key` if present.
    public func takeIfPresent(_ key: String, shape: [Int]) throws -> Tensor? {
        has(key) ? try take(key, shape: shape) : nil
    }

    /// Marks keys as consumed without loading them (buffers a port recomputes).
    public func ignore(_ key: String) {
        if has(key) { markUsed(prefix + key) }
    }

    /// Throws if the source holds tensors nobody asked for.
    public func finish() throws {
        let root = parent ?? self
        let extra = root.source.keys.filter { !root.used.contains($0) }.sorted()
        if !extra.isEmpty { throw WeightError.unexpectedKeys(file: root.source.sourceName, keys: extra) }
    }
}
