import Foundation
import PipelineTensor

/// Where a named tensor sits: its element type, shape and raw little-endian bytes.
public struct TensorInfo: Equatable {
    public var dtype: DType
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public init(dtype: DType, shape: [Int]) { self.dtype = dtype; self.shape = shape }
}

/// Anything that serves tensors by state-dict key: a safetensors file, a PyTorch
/// checkpoint, a diffusers folder.
public protocol TensorSource: AnyObject {
    /// The file (or folder) named in errors.
    var sourceName: String { get }
    var keys: [String] { get }
    func info(_ key: String) -> TensorInfo?
    /// Calls `body` with the raw bytes of `key` (count × dtype.size bytes).
    func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R
    /// The tensor as float32, checked against an expected shape (a random source draws it
    /// with that shape; every other source reads it: the default below).
    func tensor(_ key: String, shape: [Int]) throws -> Tensor
}

extension TensorSource {
    public func contains(_ key: String) -> Bool { info(key) != nil }

    /// The tensor as float32 (F16/BF16/F64 upcast or cast).
    public func tensor(_ key: String) throws -> Tensor {
        guard let i = info(key) else { throw WeightError.missingKey(file: sourceName, key: key) }
        let out = Tensor(uninitialized: i.shape)
        try withRawBytes(key) { DTypeConvert.toFloat32($0, dtype: i.dtype, count: i.count, into: out.data) }
        return out
    }

    /// The tensor as float32, checked against an expected shape.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        guard let i = info(key) else { throw WeightError.missingKey(file: sourceName, key: key) }
        guard i.shape == shape else {
            throw WeightError.shapeMismatch(file: sourceName, key: key, expected: shape, found: i.shape)
        }
        return try tensor(key)
    }

    public func doubles(_ key: String) throws -> [Double] {
        guard let i = info(key) else { throw WeightError.missingKey(file: sourceName, key: key) }
        return try withRawBytes(key) { DTypeConvert.toDouble($0, dtype: i.dtype, count: i.count) }
    }

    public func int64s(_ key: String) throws -> [Int64] {
        guard let i = info(key) else { throw WeightError.missingKey(file: sourceName, key: key) }
        return try withRawBytes(key) { DTypeConvert.toInt64($0, dtype: i.dtype, count: i.count) }
    }
}
