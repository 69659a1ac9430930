import Foundation

/// Pointwise activations, in place over a tensor's numbers.
public enum Activation {
    /// GELU with the tanh approximation (`nn.GELU(approximate="tanh")`),
    /// as DiT's MLP uses it.
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let c: Float = 0.7978845608028654  // sqrt(2/pi)
        parallelFor(count, grain: 16384) { s, e in
            for i in s..<e {
                let v = x[i]
                x[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v)))
            }
        }
    }

    /// Exact GELU, 0.5·x·(1 + erf(x/√2)).
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 16384) { s, e in
            for i in s..<e { let v = x[i]; x[i] = 0.5 * v * (1 + erff(v * 0.7071067811865476)) }
        }
    }

    /// SiLU, x·sigmoid(x).
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 16384) { s, e in
            for i in s..<e { let v = x[i]; x[i] = v / (1 + expf(-v)) }
        }
    }

    public static func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        parallelFor(count, grain: 65536) { s, e in
            for i in s..<e where x[i] < 0 { x[i] = 0 }
        }
    }
}

extension Tensor {
    public func geluTanh() -> Tensor { let o = copy(); Activation.geluTanh(o.data, count: o.count); return o }
    public func silu() -> Tensor { let o = copy(); Activation.silu(o.data, count: o.count); return o }
}
