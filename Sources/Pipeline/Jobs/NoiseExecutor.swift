import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT
import PipelineDiffusion

/// Worker side of the `noise` kind: keeps the DiT loaded across shards (keyed by its spec).
final class NoiseExecutor: ShardExecutor {
    /// The shard file's metadata key holding its `LossBuckets` (JSON).
    static let lossSumsKey = "loss_sums"

    private let dits = ModelCache<DiT>()
    var cachedModels: [String] { [dits.key].compactMap { $0 } }

    func execute(_ task: ShardTask, control: ShardControl) throws -> ShardReport {
        let s = try JobKinds.decode(NoiseSpec.self, task.jobSpec, kind: "noise")
        let shard = try JobKinds.decode(NoiseShardSpec.self, task.shardSpec, kind: "noise")
        let images = task.itemStart..<task.itemEnd
        let (manifest, folder) = try EncodeManifest.load(s.input)
        guard let j = manifest.shards.firstIndex(where: { $0.path == shard.input.path }), manifest.shards[j] == shard.input else {
            throw JobError.badInput(path: folder + "/" + EncodeManifest.fileName,
                                    reason: "no longer lists \(shard.input.path) as planned (was the encode job re-run?)")
        }
        let input = try LatentShard.load(path: folder + "/" + shard.input.path, expected: shard.input,
                                         images: manifest.imageRange(ofShard: j))
        let picked = (0..<input.rows).filter { images.contains(input.index[$0]) }

        let loadStart = Date()
        // No model for a shard without rows (all its images failed to encode): nothing to evaluate.
        let dit = picked.isEmpty ? nil : try s.dit.map { _ in try self.model(s, latentShape: input.sampleShape) }
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if let dit {
            let shape = input.sampleShape
            guard shape == [dit.inChannels, dit.inputSize, dit.inputSize] else {
                throw JobError.badSpec(kind: "noise", reason: "the DiT takes (\(dit.inChannels), \(dit.inputSize), \(dit.inputSize)) latents, "
                                       + "\(input.path) holds \(shape)")
            }
        }
        if s.x0 == .resample, !picked.isEmpty, input.scaling == nil {
            throw JobError.badInput(path: input.path, reason: "no scaling_factor in its metadata (an older encode job): "
                                    + "re-run the encode job, or use --x0 stored")
        }
        if s.flip, !picked.isEmpty, input.flipped == nil {
            throw JobError.badInput(path: input.path, reason: "no flipped latents (mean_flip, std_flip, latent_flip): "
                                    + "encode with --flip, or noise without --flip")
        }
        var errors: [ItemFailure] = []
        var rows: [Int] = []
        // Per-item problems are recorded (with the image's path) and the item skipped.
        let sources: [Tensor] = {
            var list = s.x0 == .stored ? [input.latent] : [input.mean, input.std]
            if s.flip { list += s.x0 == .stored ? [input.flipped?.latent] : [input.flipped?.mean, input.flipped?.std] }
            return list.compactMap { $0 }
        }()
        let per = Tensor.count(of: input.sampleShape)
        for r in picked {
            var reason: String?
            if let dit, input.label[r] < 0 || input.label[r] >= dit.numClasses {
                reason = "label \(input.label[r]) outside the DiT's \(dit.numClasses) classes"
            } else if sources.contains(where: { t in (0..<per).contains { !t.data[r * per + $0].isFinite } }) {
                reason = "non-finite values in its latent"
            }
            if let reason {
                errors.append(ItemFailure(item: input.index[r], path: input.paths?[r] ?? URL(fileURLWithPath: input.path).lastPathComponent,
                                          reason: reason))
            } else {
                rows.append(r)
            }
        }

        let diffusion = try s.diffusion(learnSigma: dit?.learnsSigma ?? true, predictXstart: dit?.predictsXstart ?? false)
        let draws = try NoiseDraws(seed: s.seed, numTimesteps: diffusion.numTimesteps)
        let n = rows.count * s.draws
        let shape = input.sampleShape
        let x0 = Tensor(uninitialized: [n] + shape), eps = Tensor(uninitialized: [n] + shape)
        var t = [Int](), y = [Int](), index = [Int](), drawOf = [Int](), flips = [Int]()
        for r in rows {
            try control.checkpoint()
            let item = input.index[r]
            for k in 0..<s.draws {
                let row = t.count
                t.append(try draws.timestep(item: item, draw: k))
                y.append(input.label[r]); index.append(item); drawOf.append(k)
                try draws.eps(eps.data + row * per, count: per, item: item, draw: k)
                let flip = try s.flip && draws.flipped(item: item, draw: k)
                flips.append(flip ? 1 : 0)
                switch s.x0 {
                case .stored:
                    guard let latent = flip ? input.flipped?.latent : input.latent else { throw JobError.ledger("no latents") }
                    (x0.data + row * per).update(from: latent.data + r * per, count: per)
                case .resample:
                    guard let mean = flip ? input.flipped?.mean : input.mean, let std = flip ? input.flipped?.std : input.std,
                          let scaling = input.scaling else { throw JobError.ledger("no posterior") }
                    try draws.resampledX0(x0.data + row * per, mean: mean.data + r * per, std: std.data + r * per,
                                          count: per, scaling: scaling, item: item, draw: k)
                }
            }
        }

        var w = SafeTensorsWriter()
        var modelSeconds = 0.0
        var perItem: (mse: [Float], vb: [Float]?, loss: [Float])?
        if n > 0 {
            if let dit {
                let t0 = Date()
                let terms = try NoiseExecutor.losses(diffusion: diffusion, model: dit, x0: x0, eps: eps, t: t, y: y,
                                                     workers: control.threads, control: control)
                modelSeconds = Date().timeIntervalSince(t0)
                perItem = (terms.mse, terms.vb, terms.loss)
                w.add("x_t", terms.xT)
                w.add("mse", Tensor(shape: [n], values: terms.mse))
                if let vb = terms.vb { w.add("vb", Tensor(shape: [n], values: vb)) }
                w.add("loss", Tensor(shape: [n], values: terms.loss))
            } else {
                w.add("x_t", try diffusion.qSample(x0, t: t, noise: eps))
            }
            w.add("eps", eps)
        }
        if s.dit != nil {
            var sums = try LossBuckets(numTimesteps: diffusion.numTimesteps, buckets: s.buckets, hasVB: dit?.learnsSigma ?? false)
            if let p = perItem {
                var nonFinite: [(item: Int, row: Int)] = []
                for i in 0..<n {
                    guard p.loss[i].isFinite, p.mse[i].isFinite, p.vb?[i].isFinite ?? true else {
                        nonFinite.append((index[i], i))   // kept in the shard as computed, left out of the report
                        continue
                    }
                    sums.add(t: t[i], mse: p.mse[i], vb: p.vb?[i], loss: p.loss[i])
                }
                // One record per image (the ledger keeps one error per item).
                for (item, group) in Dictionary(grouping: nonFinite, by: \.item).sorted(by: { $0.key < $1.key }) {
                    let r = rows[group[0].row / s.draws]
                    errors.append(ItemFailure(item: item, path: input.paths?[r] ?? URL(fileURLWithPath: input.path).lastPathComponent,
                                              reason: "the model's loss is not finite at draw(s) "
                                                + group.map { "\(drawOf[$0.row]) (t \(t[$0.row]))" }.joined(separator: ", ")))
                }
            }
            w.metadata[NoiseExecutor.lossSumsKey] = String(decoding: try JobKinds.encode(sums), as: UTF8.self)
        }
        w.add("t", int64: t.map(Int64.init))
        w.add("y", int64: y.map(Int64.init))
        w.add("index", int64: index.map(Int64.init))
        w.add("draw", int64: drawOf.map(Int64.init))
        if s.flip { w.add("flip", int64: flips.map(Int64.init)) }
        w.metadata["x0"] = s.x0.rawValue
        let root = task.outputDir
        let out = try OutputFileWriter.write(try w.encoded(), to: root + "/" + EncodeManifest.shardPath(task.shardIndex),
                                             relativeTo: root)
        return ShardReport(outputs: [out], itemErrors: errors, metrics: ["model_seconds": modelSeconds, "load_seconds": loadSeconds])
    }

    private func model(_ s: NoiseSpec, latentShape: [Int]) throws -> DiT {
        let side = latentShape.count == 3 ? latentShape[2] : 32
        let key = "\(s.dit ?? "")|\(s.config ?? "")|\(s.numHeads ?? 0)|\(side)"
        return try dits.model(key) {
            try DiTModelSpec(parsing: s.dit ?? "").load(configFile: s.config, numHeads: s.numHeads, imageSize: side * 8)
        }
    }

    /// `training_losses` per row: one forward per item with single-threaded kernels,
    /// `workers` items at a time, so an item's x_t and losses are a function of its own
    /// inputs only (see `ModelBatching`): the same bits whatever the shard, batch or threads.
    static func losses(diffusion: GaussianDiffusion, model: DiT, x0: Tensor, eps: Tensor, t: [Int], y: [Int],
                       workers: Int, control: ShardControl) throws -> (xT: Tensor, mse: [Float], vb: [Float]?, loss: [Float]) {
        let n = t.count
        let per = x0.count / n
        let xT = Tensor(uninitialized: x0.shape)
        let results = RowTerms(count: n)
        let w = max(1, min(workers, n))
        // One thread per item on the workers' own call paths (`Threads.with`), single-threaded
        // BLAS: shards running beside this one keep their thread counts.
        BLAS.withThreads(1) { concurrentPerform(w) { k in Threads.with(1) {
            for r in stride(from: k, to: n, by: w) {
                do {
                    try control.checkpoint()
                    let terms = try diffusion.trainingLosses(xStart: x0.slice(r..<(r + 1)), t: [t[r]], noise: eps.slice(r..<(r + 1))) {
                        try model.forward($0, t: $1, y: [y[r]])
                    }
                    (xT.data + r * per).update(from: terms.xT.data, count: per)
                    results.set(r, mse: terms.mse?[0] ?? .nan, vb: terms.vb?[0], loss: terms.loss[0])
                } catch {
                    results.fail(error)
                    return
                }
            }
        } } }
        let (mse, vb, loss) = try results.values()
        return (xT, mse, vb, loss)
    }
}

/// Thread-safe per-row loss terms.
private final class RowTerms {
    private var mse: [Float], vb: [Float?], loss: [Float]
    private var error: Error?
    private let lock = NSLock()
    init(count: Int) {
        mse = Array(repeating: .nan, count: count); vb = Array(repeating: nil, count: count); loss = Array(repeating: .nan, count: count)
    }
    func set(_ r: Int, mse m: Float, vb v: Float?, loss l: Float) { lock.lock(); mse[r] = m; vb[r] = v; loss[r] = l; lock.unlock() }
    func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    func values() throws -> ([Float], [Float]?, [Float]) {
        if let error { throw error }
        let present = vb.compactMap { $0 }
        return (mse, present.count == vb.count ? present : nil, loss)
    }
}
