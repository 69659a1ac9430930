import Foundation
import PipelineTensor

/// The fused elementwise passes of a DiT block, over (N·T, D) token rows where
/// the conditioning vectors (shift, scale, gate) are per batch item (row / T).
/// Plain loops over unsafe pointers: LLVM vectorises them.
package enum DiTKernels {
    /// out = LayerNorm(x) · (1 + scale) + shift — `modulate(norm(x), shift, scale)`, in one pass.
    /// LayerNorm has no affine and is computed in float32 two-pass form (mean, then centred
    /// variance). `shift`/`scale` point at item 0's vectors; item n's are `modStride` floats on.
    static func layerNormModulate(_ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                  rows: Int, width: Int, tokensPerItem: Int, eps: Float,
                                  shift: UnsafePointer<Float>, scale: UnsafePointer<Float>, modStride: Int) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width
                let o = out + r * width
                let item = r / tokensPerItem
                let sh = shift + item * modStride, sc = scale + item * modStride
                let mean = VectorMath.sum(p, count: width) / Float(width)
                // Centred squares into `o` first, summed with the same lane-split sum.
                for i in 0..<width { let d = p[i] - mean; o[i] = d * d }
                let inv = 1 / (VectorMath.sum(o, count: width) / Float(width) + eps).squareRoot()
                for i in 0..<width { o[i] = (p[i] - mean) * inv * (1 + sc[i]) + sh[i] }
            }
        }
    }

    /// x += gate · (y + bias): the adaLN-Zero gated residual, `x + gate.unsqueeze(1) * f(...)`,
    /// with f's output bias folded in (the GEMM that produced y ran without it).
    static func gatedResidual(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                              gate: UnsafePointer<Float>, modStride: Int, rows: Int, width: Int, tokensPerItem: Int) {
        parallelFor(rows, grain: max(1, 16384 / max(width, 1))) { s, e in
            for r in s..<e {
                let p = x + r * width, q = y + r * width
                let g = gate + (r / tokensPerItem) * modStride
                for i in 0..<width { p[i] += g[i] * (q[i] + bias[i]) }
            }
        }
    }

    /// Fills each of `rows` rows of `out` with `bias` (before a beta = 1 GEMM).
    package static func broadcastRows(_ out: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        parallelFor(rows, grain: max(1, 32768 / max(width, 1))) { s, e in
            for r in s..<e { (out + r * width).update(from: bias, count: width) }
        }
    }
}
