import Foundation
import PipelineTensor
import PipelineWeights

/// `nn.Linear(in, out, bias=True)`: weight (out, in), bias (out).
package struct DiTLinear {
    package let weight: Tensor
    package let bias: Tensor
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
