import Foundation

/// `nn.Linear(in, out, bias=True)`: weight (out, in), bias (out).
struct DiTLinear {
    let weight: Tensor
    let bias: Tensor
    var inFeatures: Int { weight.shape[1] }
    var outFeatures: Int { weight.shape[0] }

    init(weight: Tensor, bias: Tensor) {
        self.weight = weight
        self.bias = bias
    }

    /// Loads `name.weight` and `name.bias` with the given sizes (strict shapes).
    init(_ sd: StateDict, _ name: String, in inF: Int, out outF: Int) throws {
        weight = try sd.take(name + ".weight", shape: [outF, inF])
        bias = try sd.take(name + ".bias", shape: [outF])
    }

    /// Several linears on the same input fused into one (rows stacked), e.g. diffusers'
    /// separate to_q, to_k, to_v as timm's fused qkv.
    init(stacking parts: [DiTLinear]) {
        weight = Tensor.concat(parts.map(\.weight))
        bias = Tensor.concat(parts.map(\.bias))
    }

    /// Random weights (uniform, Xavier-like scale), for benchmarks and tests.
    init(random rng: inout DiTRandom, in inF: Int, out outF: Int) {
        weight = rng.uniform([outF, inF], bound: (6 / Float(inF + outF)).squareRoot())
        bias = rng.uniform([outF], bound: 0.02)
    }

    /// out[rows×out] = x·Wᵀ + b.
    func callAsFunction(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        DiTKernels.broadcastRows(out, rows: rows, width: outFeatures, bias: bias.data)
        gemm(x, rows: rows, beta: 1, into: out)
    }

    /// out = x·Wᵀ without the bias; the caller folds `bias` into its next elementwise pass.
    func withoutBias(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        gemm(x, rows: rows, beta: 0, into: out)
    }

    /// The GEMM, split across threads by `BLAS.sgemmSplit` (the forward pass runs with
    /// single-threaded BLAS calls on the elementwise kernels' own threads).
    private func gemm(_ x: UnsafePointer<Float>, rows: Int, beta: Float, into out: UnsafeMutablePointer<Float>) {
        BLAS.sgemmSplit(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                        b: weight.data, ldb: inFeatures, beta: beta, c: out, ldc: outFeatures)
    }

    /// 2·rows·in·out.
    func flops(rows: Int) -> Double { 2 * Double(rows) * Double(inFeatures) * Double(outFeatures) }
}

/// A small, fast, seedable generator (SplitMix64) for random weights.
public struct DiTRandom {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A tensor of uniform values in [-bound, bound). Filled in parallel from
    /// per-chunk streams derived from one draw, so the result depends only on the seed.
    public mutating func uniform(_ shape: [Int], bound: Float) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let base = next()
        let p = t.data
        let chunk = 1 << 16
        let n = t.count
        parallelFor((n + chunk - 1) / chunk, grain: 1) { s, e in
            for c in s..<e {
                var g = DiTRandom(seed: base ^ (UInt64(c) &* 0xD1B5_4A32_D192_ED03))
                for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                    let u = Float(g.next() >> 40) * (1 / Float(1 << 24))
                    p[i] = (2 * u - 1) * bound
                }
            }
        }
        return t
    }
}
