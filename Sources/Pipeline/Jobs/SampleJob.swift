import Foundation
import PipelineTensor
import PipelineFiles
import PipelineImaging
import PipelineDiT
import PipelineVAE
import PipelineDiffusion

/// The `sample` kind: DiT + diffusion sampler (+ the VAE) for a range of global sample
/// indices per shard. A sample's bits depend only on (seed, global index), so any sharding,
/// worker count or retry gives the same files.
///
/// With a VAE: `NNNNNN.png` per sample (as `dit-worker sample --vae`), `labels/shard-NNNNNN.npy` per shard; the
/// finalize step writes `labels.npy`, the ADM sample batch `samples_NxHxWx3.npz` (`arr_0`
/// uint8 NHWC, `arr_1` int64 labels, written streaming) and the recipe JSON beside it.
/// Without a VAE: `latents/shard-NNNNNN.npy` per shard; finalize writes `latents.npy`
/// (N, C, H, W, as `dit-worker sample` does) and `labels.npy`.
public struct SampleSpec: Codable, Equatable {
    public var outputDir: String
    public var dit: String
    public var config: String?
    public var numHeads: Int?
    public var imageSize: Int
    public var vae: String?
    public var numSamples: Int
    public var seed: UInt64
    public var cfgScale: Float
    public var guideAllChannels: Bool
    public var sampler: String
    public var steps: Int
    public var respacing: String?
    public var eta: Float
    public var labels: String
    public var batch: Int
    public var modelCalls: String
    public var samplesPerShard: Int

    public init(outputDir: String, dit: String, config: String? = nil, numHeads: Int? = nil, imageSize: Int = 256,
                vae: String? = nil, numSamples: Int, seed: UInt64 = 0, cfgScale: Float = 1.5, guideAllChannels: Bool = false,
                sampler: String = "ddpm", steps: Int = 250, respacing: String? = nil, eta: Float = 0,
                labels: String = "uniform", batch: Int = 16, modelCalls: String = "per-sample", samplesPerShard: Int = 64) {
        self.outputDir = outputDir; self.dit = dit; self.config = config; self.numHeads = numHeads
        self.imageSize = imageSize; self.vae = vae; self.numSamples = numSamples; self.seed = seed
        self.cfgScale = cfgScale; self.guideAllChannels = guideAllChannels; self.sampler = sampler; self.steps = steps
        self.respacing = respacing; self.eta = eta; self.labels = labels; self.batch = batch
        self.modelCalls = modelCalls; self.samplesPerShard = samplesPerShard
    }

    /// The recipe recorded beside the outputs: the spec without where it was written.
    func recipe() throws -> Data {
        var r = self
        r.outputDir = ""
        struct Recipe: Codable { var kind: String; var spec: SampleSpec }
        var e = try JSONSerialization.jsonObject(with: try JobKinds.encode(Recipe(kind: "sample", spec: r))) as? [String: Any] ?? [:]
        if var spec = e["spec"] as? [String: Any] { spec["outputDir"] = nil; e["spec"] = spec }
        return try JSONSerialization.data(withJSONObject: e, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    func settings() throws -> SamplerSettings {
        guard let kind = SamplerKind(rawValue: sampler) else {
            throw JobError.badSpec(kind: "sample", reason: "sampler must be ddpm or ddim, got \(sampler)")
        }
        let batching: ModelBatching
        switch modelCalls {
        case "per-sample": batching = .deterministic
        case "batched": batching = .batched
        default: throw JobError.badSpec(kind: "sample", reason: "model calls must be per-sample or batched, got \(modelCalls)")
        }
        return SamplerSettings(kind: kind, cfgScale: cfgScale, eta: eta, guideAllChannels: guideAllChannels, batching: batching)
    }
}

public struct SampleKind: JobKind {
    public init() {}
    public var name: String { "sample" }

    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(SampleSpec.self, spec, kind: name)
        guard s.numSamples > 0 else { throw JobError.badSpec(kind: name, reason: "number of samples must be > 0") }
        guard s.samplesPerShard > 0, s.batch > 0, s.steps > 0 else {
            throw JobError.badSpec(kind: name, reason: "samples per shard, batch and steps must be > 0")
        }
        try s.settings().validate()
        _ = try DiTModelSpec(parsing: s.dit)
        if case .list(let l) = try ClassLabelPolicy(parsing: s.labels), l.count < s.numSamples {
            throw JobError.badSpec(kind: name, reason: "labels file \(s.labels) has \(l.count) labels for \(s.numSamples) samples")
        }
        return JobPlan(outputDir: s.outputDir, shards: JobKinds.ranges(items: s.numSamples, perShard: s.samplesPerShard)
            .map { ShardPlan(itemStart: $0.lowerBound, itemEnd: $0.upperBound) })
    }

    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] {
        let s = try JobKinds.decode(SampleSpec.self, spec, kind: name)
        return try SampleFinalizer(spec: s, outputDir: outputDir).run()
    }

    public func makeExecutor() -> ShardExecutor { SampleExecutor() }
}

/// Worker side: keeps the DiT and the VAE loaded across shards (keyed by their specs).
final class SampleExecutor: ShardExecutor {
    private var model: (key: String, dit: DiT)?
    private var vae: (path: String, model: Autoencoder)?

    var cachedModels: [String] { [model?.key, vae?.path].compactMap { $0 } }

    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(SampleSpec.self, task.jobSpec, kind: "sample")
        let loadStart = Date()
        let key = "\(s.dit)|\(s.config ?? "")|\(s.numHeads ?? 0)|\(s.imageSize)"
        if model?.key != key {
            model = (key, try DiTModelSpec(parsing: s.dit).load(configFile: s.config, numHeads: s.numHeads, imageSize: s.imageSize))
        }
        guard let dit = model?.dit else { throw JobError.ledger("no model") }
        if let path = s.vae, vae?.path != path { vae = (path, try AutoencoderSpec.load(path)) }
        if s.vae != nil, let v = vae?.model, v.latentChannels != dit.inChannels {
            throw JobError.badSpec(kind: "sample", reason: "the VAE has \(v.latentChannels) latent channels, the DiT \(dit.inChannels)")
        }
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let engine = try SampleEngine.standard(model: dit, settings: try s.settings(), steps: s.steps,
                                               respacing: try s.respacing.map(Respacing.init(parsing:)), seed: s.seed,
                                               labels: try ClassLabelPolicy(parsing: s.labels), total: s.numSamples)
        let root = task.outputDir
        var outputs: [FileDigest] = []
        var labels: [Int64] = []
        var latents: [Tensor] = []
        var modelSeconds = 0.0
        let indices = Array(task.itemStart..<task.itemEnd)
        var t0 = Date()
        try engine.generate(indices: indices, batchSize: s.batch) { batch, y, x in
            try control.checkpoint()
            labels += y.map(Int64.init)
            if let vae = self.vae?.model, s.vae != nil {
                // One sample per decode, so a sample's pixels never depend on which samples share
                // its shard or sampler batch (nor, see AutoencoderKL.threadInvariant, on threads).
                let images = Tensor.concat(try (0..<batch.count).map { try vae.decode(x.slice($0..<($0 + 1))) })
                modelSeconds += Date().timeIntervalSince(t0)
                let h = images.shape[2], w = images.shape[3]
                let pixels = SampleQuantizer.uint8NHWC(images)      // the reference's clamp(127.5 x + 128, 0, 255)
                for (k, index) in batch.enumerated() {
                    let one = try ImageRGB8(width: w, height: h, pixels: Array(pixels[(k * h * w * 3)..<((k + 1) * h * w * 3)]))
                    outputs.append(try OutputFileWriter.write(try PNGWriter.encode(one),
                                                              to: root + "/" + SampleLayout.png(index), relativeTo: root))
                }
            } else {
                modelSeconds += Date().timeIntervalSince(t0)
                latents.append(x)
            }
            t0 = Date()
        }
        let shardName = String(format: "shard-%06d.npy", task.shardIndex)
        outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(int64: labels, shape: [labels.count])),
                                                  to: root + "/labels/" + shardName, relativeTo: root))
        if s.vae == nil {
            outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(Tensor.concat(latents))),
                                                      to: root + "/latents/" + shardName, relativeTo: root))
        }
        return ShardReport(outputs: outputs, metrics: ["model_seconds": modelSeconds, "load_seconds": loadSeconds])
    }
}

enum SampleLayout {
    /// As `dit-worker sample --vae` names them.
    static func png(_ index: Int) -> String { String(format: "%06d.png", index) }
}
