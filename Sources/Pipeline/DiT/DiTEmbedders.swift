import Foundation
import PipelineTensor
import PipelineWeights

/// `TimestepEmbedder` (models.py; diffusers: `Timesteps` + `TimestepEmbedding`):
/// 256 sinusoidal frequencies of t, then Linear → SiLU → Linear.
package struct TimestepEmbedder {
    package static let frequencyCount = 256
    /// Denominator offset of the frequency exponent. The reference divides by `half`
    /// (`-log(10000)·arange(half)/half`); diffusers' `CombinedTimestepLabelEmbeddings` uses
    /// `Timesteps(downscale_freq_shift=1)`, which divides by `half − 1` — a quirk of the
    /// diffusers port that a converted checkpoint must be run with.
    let frequencyShift: Int
    package let fc1: DiTLinear  // mlp.0 (diffusers: linear_1)
    package let fc2: DiTLinear  // mlp.2 (diffusers: linear_2)
    var hiddenSize: Int { fc2.outFeatures }

    init(_ sd: StateDict, layout: DiTKeyLayout, hiddenSize d: Int) throws {
        let n = TimestepEmbedder.frequencyCount
        switch layout {
        case .reference:
            frequencyShift = 0
            fc1 = try DiTLinear(sd, "mlp.0", in: n, out: d)
            fc2 = try DiTLinear(sd, "mlp.2", in: d, out: d)
        case .diffusers:
            frequencyShift = 1
            fc1 = try DiTLinear(sd, "linear_1", in: n, out: d)
            fc2 = try DiTLinear(sd, "linear_2", in: d, out: d)
        }
    }

    /// `timestep_embedding(t, 256)`: [cos(t·f), sin(t·f)] with f_i = exp(−ln(10000)·i / (half − shift)),
    /// in float32 exactly as the reference computes it (the product with −ln 10000 and the
    /// division rounded in float32, then exp, then t·f rounded in float32).
    package static func frequencies(_ t: [Float], shift: Int) -> Tensor {
        let dim = frequencyCount, half = dim / 2
        let logMax = Float(-Foundation.log(10000.0))
        let denom = Float(half - shift)
        let freqs: [Float] = (0..<half).map { i in expf((logMax * Float(i)) / denom) }
        let out = Tensor(uninitialized: [t.count, dim])
        for (n, tv) in t.enumerated() {
            let row = out.data + n * dim
            for i in 0..<half {
                let arg = tv * freqs[i]
                row[i] = cosf(arg)
                row[half + i] = sinf(arg)
            }
        }
        return out
    }

    /// (N, D) embeddings of the timesteps.
    func callAsFunction(_ t: [Float]) -> Tensor {
        let f = TimestepEmbedder.frequencies(t, shift: frequencyShift)
        let h = Tensor(uninitialized: [t.count, hiddenSize])
        fc1(f.data, rows: t.count, into: h.data)
        Activation.silu(h.data, count: h.count)
        let out = Tensor(uninitialized: [t.count, hiddenSize])
        fc2(h.data, rows: t.count, into: out.data)
        return out
    }

    func flops(batch: Int) -> Double { fc1.flops(rows: batch) + fc2.flops(rows: batch) }
}

/// `LabelEmbedder` (diffusers: `LabelEmbedding`): an embedding table with one extra
/// row, index `num_classes`, for the null (dropped) label that classifier-free guidance uses.
/// At inference the reference applies no dropout: labels are looked up as given.
package struct LabelEmbedder {
    package let table: Tensor  // embedding_table.weight (num_classes + 1, D)

    init(_ sd: StateDict, rows: Int, hiddenSize d: Int) throws {
        table = try sd.take("embedding_table.weight", shape: [rows, d])
    }

    /// Adds the rows of `labels` to `out` (N, D).
    func add(_ labels: [Int], into out: Tensor) throws {
        let d = table.shape[1], rows = table.shape[0]
        for (n, y) in labels.enumerated() {
            guard y >= 0 && y < rows else { throw DiTError.badInput("label \(y) at index \(n) is outside 0..<\(rows)") }
            let src = table.data + y * d, dst = out.data + n * d
            for i in 0..<d { dst[i] += src[i] }
        }
    }
}

/// `t_embedder(t) + y_embedder(y)`: the conditioning vector c. The reference has one;
/// diffusers' DiT has one per block (`norm1.emb`), plus the final layer reusing block 0's.
package struct ConditionEmbedder {
    package let timestep: TimestepEmbedder  // t_embedder (diffusers: norm1.emb.timestep_embedder)
    package let label: LabelEmbedder        // y_embedder (diffusers: norm1.emb.class_embedder)

    /// SiLU(c), (N, D): every consumer of c is `Sequential(SiLU, Linear)`, so the SiLU is applied once.
    func siluConditioning(t: [Float], y: [Int]) throws -> Tensor {
        let c = timestep(t)
        try label.add(y, into: c)
        Activation.silu(c.data, count: c.count)
        return c
    }
}

public enum DiTError: Error, CustomStringConvertible, Equatable {
    case badInput(String)

    public var description: String {
        switch self {
        case let .badInput(r): return "DiT: bad input: \(r)"
        }
    }
}
