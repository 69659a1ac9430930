import Foundation

/// The fused elementwise passes of a DiT block, over (N·T, D) token rows where
/// the conditioning vectors (shift, scale, gate) are per batch item (row / T).
enum DiTKernels {
    typealias V = SIMD16<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

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
                var i = 0
                var acc = V(repeating: 0)
                while i + 16 <= width { acc += load(p + i); i += 16 }
                var sum = acc.sum()
                while i < width { sum += p[i]; i += 1 }
                let mean = sum / Float(width)
                let mv = V(repeating: mean)
                var vacc = V(repeating: 0)
                i = 0
                while i + 16 <= width { let d = load(p + i) - mv; vacc += d * d; i += 16 }
                var vs = vacc.sum()
                while i < width { let d = p[i] - mean; vs += d * d; i += 1 }
                let inv = 1 / (vs / Float(width) + eps).squareRoot()
                let iv = V(repeating: inv)
                let one = V(repeating: 1)
                i = 0
                while i + 16 <= width {
                    let n = (load(p + i) - mv) * iv
                    store(n * (one + load(sc + i)) + load(sh + i), o + i)
                    i += 16
                }
                while i < width { o[i] = (p[i] - mean) * inv * (1 + sc[i]) + sh[i]; i += 1 }
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
                var i = 0
                while i + 16 <= width {
                    store(load(p + i) + load(g + i) * (load(q + i) + load(bias + i)), p + i)
                    i += 16
                }
                while i < width { p[i] += g[i] * (q[i] + bias[i]); i += 1 }
            }
        }
    }

    /// Fills each of `rows` rows of `out` with `bias` (before a beta = 1 GEMM).
    static func broadcastRows(_ out: UnsafeMutablePointer<Float>, rows: Int, width: Int, bias: UnsafePointer<Float>) {
        parallelFor(rows, grain: max(1, 32768 / max(width, 1))) { s, e in
            for r in s..<e { (out + r * width).update(from: bias, count: width) }
        }
    }
}
