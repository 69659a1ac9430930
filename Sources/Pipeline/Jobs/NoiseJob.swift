import Foundation
import PipelineFiles
import PipelineDiffusion

/// The `noise` kind: an encode job's latent shards to diffusion training pairs. For every
/// image i that encoded and every draw k in 0..<draws, t and eps (and, by default, the
/// posterior sample x0) come from the noise protocol keyed by (seed, i, k) (`NoiseDraws`),
/// and x_t = q_sample(x0, t, eps) on the diffusion schedule (float64 coefficients cast to
/// float32, as `GaussianDiffusion`). With a DiT, the model's per-item `training_losses`
/// terms (mse, vb, loss) too, and a report per timestep bucket.
///
/// Shards: `shards/shard-NNNNNN.safetensors`, rows item-major then draw: `x_t`, `eps`
/// float32 (n, C, h, w); `t`, `y`, `index` (the image index), `draw` int64 (n); with a DiT
/// `mse`, `loss` [`vb`] float32 (n); with `flip`, `flip` int64 (n, 1 = the flipped image); and metadata `loss_sums` (the shard's `LossBuckets`).
/// Finalize: `manifest.json` (spec, rows, shards with sizes and SHA-256) and, with a DiT,
/// `losses.json` (`NoiseLossReport`).
public struct NoiseSpec: Codable, Equatable {
    public var outputDir: String
    /// The encode job's output folder or its manifest.json.
    public var input: String
    public var seed: UInt64
    public var draws: Int
    public var x0: NoiseX0Source
    /// Take the flipped image's posterior / latent for draws whose coin says so (`NoiseDraws.flipped`).
    public var flip: Bool
    /// `NoiseSchedule` name (linear, cosine).
    public var schedule: String
    public var diffusionSteps: Int
    /// DiT weights (file or diffusers folder) or random:PRESET: also compute the losses.
    public var dit: String?
    public var config: String?
    public var numHeads: Int?
    public var buckets: Int
    /// Images per shard (each gives `draws` rows).
    public var itemsPerShard: Int

    public init(outputDir: String, input: String, seed: UInt64 = 0, draws: Int = 1, x0: NoiseX0Source = .resample,
                flip: Bool = false, schedule: String = "linear", diffusionSteps: Int = 1000, dit: String? = nil, config: String? = nil,
                numHeads: Int? = nil, buckets: Int = 10, itemsPerShard: Int = 256) {
        self.outputDir = outputDir; self.input = input; self.seed = seed; self.draws = draws; self.x0 = x0; self.flip = flip
        self.schedule = schedule; self.diffusionSteps = diffusionSteps; self.dit = dit; self.config = config
        self.numHeads = numHeads; self.buckets = buckets; self.itemsPerShard = itemsPerShard
    }

    /// The q_sample chain (and, for the losses, the model's variance type and what it predicts).
    func diffusion(learnSigma: Bool, predictXstart: Bool = false) throws -> GaussianDiffusion {
        do {
            return try GaussianDiffusion.create(respacing: nil, schedule: try NoiseSchedule(parsing: schedule),
                                                predictXstart: predictXstart, learnSigma: learnSigma,
                                                diffusionSteps: diffusionSteps)
        } catch {
            throw JobError.badSpec(kind: "noise", reason: "\(error)")
        }
    }

    func validate() throws {
        func bad(_ r: String) -> JobError { .badSpec(kind: "noise", reason: r) }
        guard draws > 0, itemsPerShard > 0 else { throw bad("draws and items per shard must be > 0") }
        guard draws <= 1 << 16 else { throw bad("at most 65536 draws per item") }
        guard diffusionSteps > 0 else { throw bad("diffusion steps must be > 0") }
        _ = try diffusion(learnSigma: true)
        if dit != nil { _ = try LossBuckets(numTimesteps: diffusionSteps, buckets: buckets, hasVB: true) }
        if let dit {
            let model: DiTModelSpec
            do { model = try DiTModelSpec(parsing: dit) } catch { throw bad("\(error)") }
            if case .weights(let path) = model, !FileManager.default.fileExists(atPath: path) {
                throw bad("DiT weights \(path) not found")
            }
        }
        guard !outputDir.isEmpty else { throw bad("no output folder") }
    }
}

/// A noise shard: the encode shard it reads (as the manifest listed it at planning time).
/// Its images are the task's item range.
struct NoiseShardSpec: Codable {
    var input: FileDigest
}

public struct NoiseKind: JobKind {
    public init() {}
    public var name: String { "noise" }

    /// One or more noise shards per encode shard (`itemsPerShard` images each). Reads only
    /// the manifest: a missing or bad latent shard fails its own noise shards, not the plan.
    public func plan(spec: Data) throws -> JobPlan {
        let s = try JobKinds.decode(NoiseSpec.self, spec, kind: name)
        try s.validate()
        let (m, _) = try EncodeManifest.load(s.input)
        var shards: [ShardPlan] = []
        for (j, file) in m.shards.enumerated() {
            let images = m.imageRange(ofShard: j)
            for r in JobKinds.ranges(items: images.count, perShard: s.itemsPerShard) {
                shards.append(ShardPlan(itemStart: images.lowerBound + r.lowerBound, itemEnd: images.lowerBound + r.upperBound,
                                        spec: try JobKinds.encode(NoiseShardSpec(input: file))))
            }
        }
        return JobPlan(outputDir: s.outputDir, shards: shards)
    }

    public func finalize(spec: Data, outputDir: String, shardOutputs: [FileDigest]) throws -> [FileDigest] {
        let s = try JobKinds.decode(NoiseSpec.self, spec, kind: name)
        let shards = shardOutputs.filter { $0.path.hasPrefix("shards/") }.sorted { $0.path < $1.path }
        var rows = 0
        var sums: LossBuckets?
        if s.dit != nil { sums = try LossBuckets(numTimesteps: s.diffusionSteps, buckets: s.buckets, hasVB: false) }
        for d in shards {
            let path = outputDir + "/" + d.path
            let f: SafeTensorsFile
            do { f = try SafeTensorsFile(path: path) } catch { throw JobError.verification(path: d.path, reason: "\(error)") }
            rows += f.info("t")?.shape.first ?? 0
            guard s.dit != nil else { continue }
            // Partial sums merged in shard order: the same report whatever ran the shards.
            guard let json = f.metadata[NoiseExecutor.lossSumsKey],
                  let part = try? JSONDecoder().decode(LossBuckets.self, from: Data(json.utf8)) else {
                throw JobError.verification(path: d.path, reason: "no loss sums in the shard's metadata")
            }
            // A shard without rows evaluated nothing (and loaded no model to say whether vb exists).
            guard part.count.contains(where: { $0 > 0 }) else { continue }
            if sums?.count.allSatisfy({ $0 == 0 }) == true, (sums?.vb == nil) != (part.vb == nil) {
                sums = try LossBuckets(numTimesteps: s.diffusionSteps, buckets: s.buckets, hasVB: part.vb != nil)
            }
            try sums?.merge(part)
        }
        var out: [FileDigest] = []
        if let sums {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            out.append(try OutputFileWriter.write(try e.encode(sums.report()), to: outputDir + "/" + NoiseLossReport.fileName,
                                                  relativeTo: outputDir))
        }
        struct Manifest: Codable { var kind: String; var spec: NoiseSpec; var rows: Int; var shards: [FileDigest] }
        var recorded = s
        recorded.outputDir = "."   // the manifest lives in the output folder
        out.append(try OutputFileWriter.write(try JobKinds.encode(Manifest(kind: name, spec: recorded, rows: rows, shards: shards)),
                                              to: outputDir + "/manifest.json", relativeTo: outputDir))
        return out
    }

    public func makeExecutor() -> ShardExecutor { NoiseExecutor() }
}
