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
    /// A diffusers sampler's full resolved config (diffusers' JSON keys), so every worker and
    /// the recipe see the same schedule whatever files they can read.
    public var scheduler: String?
    /// `--cfg-interval LO,HI`.
    public var cfgInterval: String?
    /// `--clip-denoised` (ADM samplers); absent (older specs): false.
    public var clipDenoised: Bool?

    public init(outputDir: String, dit: String, config: String? = nil, numHeads: Int? = nil, imageSize: Int = 256,
                vae: String? = nil, numSamples: Int, seed: UInt64 = 0, cfgScale: Float = 1.5, guideAllChannels: Bool = false,
                sampler: String = "ddpm", steps: Int = 250, respacing: String? = nil, eta: Float = 0,
                labels: String = "uniform", batch: Int = 16, modelCalls: String = "per-sample", samplesPerShard: Int = 64,
                scheduler: String? = nil, cfgInterval: String? = nil, clipDenoised: Bool? = nil) {
        self.scheduler = scheduler; self.cfgInterval = cfgInterval; self.clipDenoised = clipDenoised
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
        if var spec = e["spec"] as? [String: Any] {
            spec["outputDir"] = nil
            // The scheduler config as a JSON object, not escaped text.
            if let text = scheduler, let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) { spec["scheduler"] = obj }
            e["spec"] = spec
        }
        return try JSONSerialization.data(withJSONObject: e, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    func settings() throws -> SamplerSettings {
        let choice: SamplerChoice
        do {
            choice = try SamplerChoice(name: sampler)
        } catch { throw JobError.badSpec(kind: "sample", reason: "\(error)") }
        let batching: ModelBatching
        switch modelCalls {
        case "per-sample": batching = .deterministic
        case "batched": batching = .batched
        default: throw JobError.badSpec(kind: "sample", reason: "model calls must be per-sample or batched, got \(modelCalls)")
        }
        var settings = choice.settings(cfgScale: cfgScale, eta: eta, guideAllChannels: guideAllChannels, batching: batching)
        settings.clipDenoised = clipDenoised ?? false
        do {
            settings.cfgInterval = try cfgInterval.map(GuidanceInterval.init(parsing:))
            if case .diffusers = choice, let text = scheduler {
                var config = settings.scheduler!
                try config.apply(jsonData: Data(text.utf8), source: "the job's scheduler config")
                settings.scheduler = config
            }
        } catch { throw JobError.badSpec(kind: "sample", reason: "\(error)") }
        return settings
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
        let settings = try s.settings()
        try settings.validate()
        if let config = settings.scheduler {
            do { _ = try config.scheduler(steps: s.steps) } catch { throw JobError.badSpec(kind: name, reason: "\(error)") }
        }
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
    private let dits = ModelCache<DiT>()
    private let vaes = ModelCache<Autoencoder>()

    var cachedModels: [String] { [dits.key, vaes.key].compactMap { $0 } }

    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(SampleSpec.self, task.jobSpec, kind: "sample")
        let loadStart = Date()
        let key = "\(s.dit)|\(s.config ?? "")|\(s.numHeads ?? 0)|\(s.imageSize)"
        let dit = try dits.model(key) {
            try DiTModelSpec(parsing: s.dit).load(configFile: s.config, numHeads: s.numHeads, imageSize: s.imageSize)
        }
        let vae = try s.vae.map { path in try vaes.model(path) { try AutoencoderSpec.load(path) } }
        if let v = vae, v.latentChannels != dit.inChannels {
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
        try engine.generate(indices: indices, batchSize: s.batch, checkpoint: control.checkpoint) { batch, y, x in
            try control.checkpoint()
            labels += y.map(Int64.init)
            if let vae {
                // One sample per decode, so a sample's pixels never depend on which samples share
                // its shard or sampler batch (nor, see AutoencoderKL.threadInvariant, on threads).
                let images = Tensor.concat(try (0..<batch.count).map {
                    try control.checkpoint()
                    return try vae.decode(x.slice($0..<($0 + 1)))
                })
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
        outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(int64: labels, shape: [labels.count])),
                                                  to: root + "/" + SampleLayout.labels(task.shardIndex), relativeTo: root))
        if s.vae == nil {
            outputs.append(try OutputFileWriter.write(NPY.encode(NPYArray(Tensor.concat(latents))),
                                                      to: root + "/" + SampleLayout.latents(task.shardIndex), relativeTo: root))
        }
        return ShardReport(outputs: outputs, metrics: ["model_seconds": modelSeconds, "load_seconds": loadSeconds])
    }
}

enum SampleLayout {
    /// As `dit-worker sample --vae` names them.
    static func png(_ index: Int) -> String { String(format: "%06d.png", index) }
    /// A shard's class labels, and without a VAE its latents (.npy).
    static func labels(_ shard: Int) -> String { "labels/" + JobKinds.shardName(shard) + ".npy" }
    static func latents(_ shard: Int) -> String { "latents/" + JobKinds.shardName(shard) + ".npy" }
}
