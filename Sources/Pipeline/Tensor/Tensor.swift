import Foundation

/// Owned, 64-byte aligned float32 memory. Tensors share it by reference:
/// a reshape is free, and writes through one view are seen by the others.
public final class TensorStorage {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative tensor size")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// A dense, row-major float32 tensor (NCHW for images, (N, T, D) for tokens).
///
/// `Tensor` is a value holding a shape and a reference to its storage: copying a
/// `Tensor` does not copy the numbers. Use `copy()` for an independent buffer.
public struct Tensor {
    public private(set) var shape: [Int]
    public let storage: TensorStorage

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: Tensor.count(of: shape))
    }

    /// A tensor whose contents the caller will overwrite entirely.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(count: Tensor.count(of: shape), zeroed: false)
    }

    public init(shape: [Int], values: [Float]) {
        precondition(Tensor.count(of: shape) == values.count,
                     "shape \(shape) holds \(Tensor.count(of: shape)) values, got \(values.count)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { storage.pointer.update(from: base, count: values.count) }
        }
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    init(shape: [Int], storage: TensorStorage) {
        precondition(Tensor.count(of: shape) <= storage.count)
        self.shape = shape
        self.storage = storage
    }

    public static func count(of shape: [Int]) -> Int {
        shape.reduce(1) { a, b in
            precondition(b >= 0, "negative dimension in \(shape)")
            return a * b
        }
    }

    @inline(__always) public var count: Int { Tensor.count(of: shape) }
    @inline(__always) public var rank: Int { shape.count }
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.pointer }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// The same numbers seen with another shape (no copy). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            resolved[hole] = count / known
        }
        precondition(Tensor.count(of: resolved) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: resolved, storage: storage)
    }

    /// An independent copy.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.data.update(from: data, count: count)
        return out
    }

    /// The numbers as a Swift array (tests and small metadata only).
    public var values: [Float] { Array(buffer) }

    /// Rows `start..<end` along the first dimension, copied.
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0])
        let inner = count / max(shape[0], 1)
        var s = shape
        s[0] = range.count
        let out = Tensor(uninitialized: s)
        out.data.update(from: data + range.lowerBound * inner, count: range.count * inner)
        return out
    }

    /// Concatenation along the first dimension.
    public static func concat(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let tail = Array(parts[0].shape.dropFirst())
        var s = parts[0].shape
        s[0] = parts.reduce(0) { acc, p in
            precondition(Array(p.shape.dropFirst()) == tail, "concat: shapes \(parts.map(\.shape)) differ")
            return acc + p.shape[0]
        }
        let out = Tensor(uninitialized: s)
        var offset = 0
        for p in parts {
            (out.data + offset).update(from: p.data, count: p.count)
            offset += p.count
        }
        return out
    }

    /// Largest absolute value.
    public var maxAbs: Float {
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i])) }
        return m
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
