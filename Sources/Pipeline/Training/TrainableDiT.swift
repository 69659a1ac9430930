import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT

/// One trainable `nn.Linear` (or the patch conv viewed as one): weight (out, in), bias (out),
/// and their gradients of the same shapes. `weight` keeps the checkpoint's shape (the patch
/// conv's (D, C, p, p)); the kernels read it as (out, in).
struct TrainLinear {
    let weight: Tensor, bias: Tensor
    let gradWeight: Tensor, gradBias: Tensor
    let inFeatures: Int, outFeatures: Int

    init(weight: Tensor, bias: Tensor) {
        self.weight = weight
        self.bias = bias
        gradWeight = Tensor(zeros: weight.shape)
        gradBias = Tensor(zeros: bias.shape)
        outFeatures = weight.shape[0]
        inFeatures = weight.count / outFeatures
    }

    /// A copy of a loaded linear (the inference model's tensors are never written).
    init(copying l: DiTLinear, shape: [Int]? = nil) {
        self.init(weight: l.weight.copy().reshaped(shape ?? l.weight.shape), bias: l.bias.copy())
    }

    /// out[rows × out] = x·Wᵀ + b.
    func forward(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        DiTKernels.broadcastRows(out, rows: rows, width: outFeatures, bias: bias.data)
        BLAS.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures,
                   b: weight.data, ldb: inFeatures, beta: 1, c: out, ldc: outFeatures)
    }

    /// Accumulates dW += dyᵀ·x and db += Σ_rows dy; writes dx = dy·W when `dx` is given
    /// (`accumulate`: dx += dy·W).
    func backward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int,
                  dx: UnsafeMutablePointer<Float>?, accumulate: Bool = false) {
        BLAS.sgemm(transA: true, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures,
                   b: x, ldb: inFeatures, beta: 1, c: gradWeight.data, ldc: inFeatures)
        let gb = gradBias.data
        for r in 0..<rows {
            let row = dy + r * outFeatures
            for j in 0..<outFeatures { gb[j] += row[j] }
        }
        if let dx {
            BLAS.sgemm(m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures,
                       b: weight.data, ldb: inFeatures, beta: accumulate ? 1 : 0, c: dx, ldc: inFeatures)
        }
    }
}

/// The trainable parameters of one `DiTBlock` (reference key names).
struct TrainBlock {
    let qkv: TrainLinear    // attn.qkv
    let proj: TrainLinear   // attn.proj
    let fc1: TrainLinear    // mlp.fc1
    let fc2: TrainLinear    // mlp.fc2
    let adaLN: TrainLinear  // adaLN_modulation.1
    let heads: Int
}

/// A DiT's parameters held for training: values and gradients, under the reference
/// (`models.py`) state-dict names. `pos_embed` is the reference's frozen buffer
/// (`nn.Parameter(..., requires_grad=False)`): stored and saved, never trained.
/// The label table keeps the null row (index `num_classes`) that label dropout uses.
public final class TrainableDiT {
    public let config: DiTConfig
    let patch: TrainLinear          // x_embedder.proj (weight (D, C, p, p))
    let posEmbed: Tensor            // pos_embed (1, T, D), requires_grad=False
    let tFC1: TrainLinear           // t_embedder.mlp.0
    let tFC2: TrainLinear           // t_embedder.mlp.2
    let labelTable: Tensor          // y_embedder.embedding_table.weight
    let labelTableGrad: Tensor
    let blocks: [TrainBlock]        // blocks.i
    let finalAdaLN: TrainLinear     // final_layer.adaLN_modulation.1
    let finalLinear: TrainLinear    // final_layer.linear

    /// Copies the weights of a loaded reference-layout DiT.
    public init(_ model: DiT) throws {
        let c = model.config
        guard c.layout == .reference, let cond = model.condition else {
            throw DiTConfigError.invalid(file: "training", reason: "training needs the reference (models.py) key layout; convert diffusers weights first")
        }
        guard c.hasNullClass else {
            throw DiTConfigError.invalid(file: "training", reason: "training with label dropout needs the null-class row in the label table")
        }
        config = c
        patch = TrainLinear(copying: model.xEmbedder.proj, shape: [c.hiddenSize, c.inChannels, c.patchSize, c.patchSize])
        posEmbed = model.posEmbed.copy().reshaped([1, c.tokens, c.hiddenSize])
        tFC1 = TrainLinear(copying: cond.timestep.fc1)
        tFC2 = TrainLinear(copying: cond.timestep.fc2)
        labelTable = cond.label.table.copy()
        labelTableGrad = Tensor(zeros: labelTable.shape)
        blocks = model.blocks.map { b in
            TrainBlock(qkv: TrainLinear(copying: b.attn.qkv), proj: TrainLinear(copying: b.attn.proj),
                       fc1: TrainLinear(copying: b.mlp.fc1), fc2: TrainLinear(copying: b.mlp.fc2),
                       adaLN: TrainLinear(copying: b.adaLN), heads: b.attn.heads)
        }
        finalAdaLN = TrainLinear(copying: model.finalLayer.adaLN)
        finalLinear = TrainLinear(copying: model.finalLayer.linear)
    }

    /// Every tensor of the state dict in `models.py` order, with whether it is trained and
    /// its gradient (nil for the frozen `pos_embed`).
    public var parameters: [(name: String, value: Tensor, grad: Tensor?)] {
        var out: [(String, Tensor, Tensor?)] = []
        func lin(_ name: String, _ l: TrainLinear) {
            out.append((name + ".weight", l.weight, l.gradWeight))
            out.append((name + ".bias", l.bias, l.gradBias))
        }
        out.append(("pos_embed", posEmbed, nil))
        lin("x_embedder.proj", patch)
        lin("t_embedder.mlp.0", tFC1)
        lin("t_embedder.mlp.2", tFC2)
        out.append(("y_embedder.embedding_table.weight", labelTable, labelTableGrad))
        for (i, b) in blocks.enumerated() {
            lin("blocks.\(i).attn.qkv", b.qkv)
            lin("blocks.\(i).attn.proj", b.proj)
            lin("blocks.\(i).mlp.fc1", b.fc1)
            lin("blocks.\(i).mlp.fc2", b.fc2)
            lin("blocks.\(i).adaLN_modulation.1", b.adaLN)
        }
        lin("final_layer.linear", finalLinear)
        lin("final_layer.adaLN_modulation.1", finalAdaLN)
        return out
    }

    public func zeroGradients() {
        for p in parameters { if let g = p.grad { g.data.update(repeating: 0, count: g.count) } }
    }

    /// The state dict as a safetensors writer (values copied at call time).
    public func stateDict(into writer: inout SafeTensorsWriter, prefix: String = "") {
        for p in parameters { writer.add(prefix + p.name, p.value) }
    }

    /// A `DiT` (inference model) holding a copy of the current weights.
    public func inferenceModel() throws -> DiT {
        var copies: [String: Tensor] = [:]
        for p in parameters { copies[p.name] = p.value.copy() }
        return try DiT(config: config, weights: InMemoryTensors(name: "training state", tensors: copies))
    }
}

/// Named tensors in memory as a `TensorSource` (float32), to build a `DiT` without a file.
final class InMemoryTensors: TensorSource {
    let name: String
    let tensors: [String: Tensor]
    var sourceName: String { name }
    var keys: [String] { tensors.keys.sorted() }

    init(name: String, tensors: [String: Tensor]) {
        self.name = name
        self.tensors = tensors
    }

    func info(_ key: String) -> TensorInfo? {
        tensors[key].map { TensorInfo(dtype: .f32, shape: $0.shape) }
    }

    func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        guard let t = tensors[key] else { throw WeightError.missingKey(file: name, key: key) }
        return try body(UnsafeRawPointer(t.data))
    }
}
