import Foundation

extension Tensor {
    /// self += other (same shape), in place on the shared storage.
    public func addInPlace(_ other: Tensor) {
        precondition(count == other.count, "add: \(shape) vs \(other.shape)")
        let a = data, b = other.data
        parallelFor(count, grain: 65536) { s, e in for i in s..<e { a[i] += b[i] } }
    }

    /// self *= scalar, in place.
    public func scaleInPlace(_ k: Float) {
        let a = data
        parallelFor(count, grain: 65536) { s, e in for i in s..<e { a[i] *= k } }
    }

    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor {
        let o = lhs.copy(); o.addInPlace(rhs); return o
    }

    /// Adds a per-channel bias to an NCHW (or (C, L)) tensor in place.
    public func addChannelBias(_ bias: UnsafePointer<Float>, channels: Int) {
        let inner = count / (shape[0] * channels)
        let a = data
        let n = shape[0]
        parallelFor(n * channels, grain: max(1, 65536 / max(inner, 1))) { s, e in
            for nc in s..<e {
                let b = bias[nc % channels]
                let p = a + nc * inner
                for i in 0..<inner { p[i] += b }
            }
        }
    }

    /// Permutes the axes (a general transpose, copying).
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.count == rank && Set(axes) == Set(0..<rank), "bad permutation \(axes)")
        let outShape = axes.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        var inStrides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { inStrides[d] = inStrides[d + 1] * shape[d + 1] }
        let strides = axes.map { inStrides[$0] }
        let src = data, dst = out.data
        let total = count
        let inner = outShape.last ?? 1
        let innerStride = strides.last ?? 1
        let outer = total / max(inner, 1)
        parallelFor(outer, grain: max(1, 16384 / max(inner, 1))) { s, e in
            var idx = [Int](repeating: 0, count: outShape.count)
            for o in s..<e {
                var rem = o
                var base = 0
                for d in stride(from: outShape.count - 2, through: 0, by: -1) {
                    idx[d] = rem % outShape[d]; rem /= outShape[d]
                    base += idx[d] * strides[d]
                }
                let dp = dst + o * inner
                for i in 0..<inner { dp[i] = src[base + i * innerStride] }
            }
        }
        return out
    }
}
