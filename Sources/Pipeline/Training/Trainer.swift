import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT
import PipelineDiffusion

/// A training run (`train.py` in spirit): deterministic batches, timesteps, noise and label
/// dropout from the seed and step; AdamW; optional gradient clipping; EMA of the weights;
/// checkpoints at step 0 and every K steps under `out/checkpoints/NNNNNNN.safetensors` (`model.*`, `ema.*`,
/// `opt.*`, metadata `step`, `args`), with `out/ema.safetensors` + `out/config.json` (the EMA
/// weights, loadable by `DiT.load`) and `out/args.json` refreshed each time.
public final class Trainer {
    public let options: TrainingOptions
    public let out: String
    public let model: TrainableDiT
    public let ema: TrainableDiT
    let optimizer: AdamW
    let diffusion: ADMTrainingLoss
    let noise: PhiloxNoise
    let data: TrainingData
    public private(set) var step = 0
    private var permutation: [Int] = []
    private var permutationEpoch = -1

    public struct LogLine {
        public var step: Int, loss: Double, gradNorm: Double, imagesPerSecond: Double, gflops: Double, lr: Double
        public var text: String {
            String(format: "step %7d  loss %.5f  grad_norm %.4f  lr %.2e  %.1f img/s  %.2f GFLOP/s", step, loss, gradNorm, lr, imagesPerSecond, gflops)
        }
    }

    /// Starts a run, or with `resume` continues from the newest checkpoint in `out`.
    public init(options: TrainingOptions, data: TrainingData, out: String, resume: Bool) throws {
        let config = try options.modelConfig()
        guard data.sampleShape == [config.inChannels, config.inputSize, config.inputSize] else {
            let d = data.sampleShape.map(String.init).joined(separator: " x ")
            throw DiTConfigError.invalid(file: out, reason: "the data are \(d); the model takes \(config.inChannels) x \(config.inputSize) x \(config.inputSize)")
        }
        guard data.numClasses <= config.numClasses else {
            throw DiTConfigError.invalid(file: out, reason: "the data have \(data.numClasses) classes, the model \(config.numClasses)")
        }
        guard options.batch > 0, options.steps >= 0, options.checkpointEvery > 0, options.logEvery > 0 else {
            throw DiTConfigError.invalid(file: out, reason: "batch, checkpoint and log intervals must be positive")
        }
        self.options = options
        self.out = out
        self.data = data
        diffusion = .linear(steps: options.diffusionSteps)
        noise = PhiloxNoise(seed: options.seed)
        if let path = options.initWeights {
            let start = try DiT.load(path: path)
            guard start.config == config else {
                throw DiTConfigError.invalid(file: path, reason: "the initial weights are a \(start.config); the run trains a \(config)")
            }
            model = try TrainableDiT(start)
            ema = try TrainableDiT(start)
        } else {
            model = try TrainableDiT(initializing: config, seed: options.seed)
            ema = try TrainableDiT(initializing: config, seed: options.seed)
        }
        Trainer.copy(from: model, to: ema)  // train.py: update_ema(ema, model, decay=0)
        optimizer = AdamW(model: model, lr: Float(options.lr), weightDecay: Float(options.weightDecay))
        try FileManager.default.createDirectory(atPath: out + "/checkpoints", withIntermediateDirectories: true)
        if resume, let last = try Trainer.checkpoints(in: out).last {
            try load(checkpoint: last)
        }
    }

    /// Trains until `options.steps`, calling `log` every `logEvery` steps.
    public func run(log: (LogLine) -> Void) throws {
        let flopsPerImage = 3 * (try model.inferenceModel().flops(batch: 1))  // forward + backward ≈ 3 × forward
        var lossSum = 0.0, normSum = 0.0, count = 0
        // A fresh run records its initial weights as checkpoint 0 (the untrained baseline that
        // FID comparisons use); `--steps 0` writes only that.
        if step == 0 { try save() }
        var clock = Date()
        while step < options.steps {
            let (loss, norm) = try trainStep()
            lossSum += Double(loss); normSum += Double(norm); count += 1
            if step % options.logEvery == 0 || step == options.steps {
                let dt = Date().timeIntervalSince(clock)
                let ips = Double(count * options.batch) / max(dt, 1e-9)
                log(LogLine(step: step, loss: lossSum / Double(count), gradNorm: normSum / Double(count),
                            imagesPerSecond: ips, gflops: ips * flopsPerImage / 1e9,
                            lr: options.learningRate(atStep: step - 1)))
                lossSum = 0; normSum = 0; count = 0
                clock = Date()
            }
            if step % options.checkpointEvery == 0 || step == options.steps { try save() }
        }
    }

    /// What one training step feeds the model: images, timesteps, labels after label dropout
    /// (`num_classes` = the null label) and noise, in batch order.
    public struct Batch {
        public let indices: [Int]
        public let x0: Tensor
        public let t: [Int]
        public let y: [Int]
        public let noise: Tensor
    }

    /// The batch of training step `step`: a pure function of (seed, step, data), so a resumed run
    /// draws the same values.
    public func batch(at step: Int) throws -> Batch {
        let b = options.batch, c = model.config
        let drawn = (0..<b).map { sampleIndex(step * b + $0) }
        let indices = drawn.map(\.index)
        let x0 = try data.batch(indices, epochs: drawn.map(\.epoch))
        // Timesteps, label dropout and noise from the noise protocol, keyed by (item in the
        // batch, purpose, training step).
        let t = try (0..<b).map { try noise.uniformInt(below: diffusion.numTimesteps, index: $0, purpose: .trainingTimestep, step: step) }
        // Label dropout (LabelEmbedder.token_drop): rand < p → the null class.
        let y = try indices.enumerated().map { k, i -> Int in
            let u = Double(try noise.uniformInt(below: 1 << 24, index: k, purpose: .trainingLabelDrop, step: step)) / Double(1 << 24)
            return u < options.classDropoutProb ? c.numClasses : data.labels[i]
        }
        let eps = try noise.normal(indices: Array(0..<b), sampleShape: Array(x0.shape.dropFirst()), purpose: .trainingNoise, step: step)
        return Batch(indices: indices, x0: x0, t: t, y: y, noise: eps)
    }

    /// One optimisation step; returns the batch loss and the gradient norm before clipping.
    @discardableResult
    public func trainStep() throws -> (Float, Float) {
        let batch = try batch(at: step)
        let result = try model.lossAndGradients(x0: batch.x0, t: batch.t, noise: batch.noise, y: batch.y, diffusion: diffusion)
        guard result.loss.isFinite else { throw DiTError.badInput("the loss is not finite at step \(step)") }
        let norm = model.clipGradients(maxNorm: options.gradClip.map { Float($0) })
        optimizer.lr = Float(options.learningRate(atStep: step))
        try optimizer.update(model)
        Trainer.updateEMA(ema, from: model, decay: Float(options.emaDecay))
        step += 1
        return (result.loss, norm)
    }

    /// Sample position → (item index, epoch): a fresh seeded permutation of the data every epoch.
    private func sampleIndex(_ position: Int) -> (index: Int, epoch: Int) {
        let n = data.count, epoch = position / n
        if epoch != permutationEpoch {
            var rng = TrainingRandom.stream(seed: options.seed, step: epoch, purpose: 3)
            permutation = Array(0..<n)
            for i in stride(from: n - 1, to: 0, by: -1) { permutation.swapAt(i, TrainingRandom.below(i + 1, &rng)) }
            permutationEpoch = epoch
        }
        return (permutation[position % n], epoch)
    }

    /// ema ← decay·ema + (1 − decay)·model over every state-dict tensor (`update_ema`).
    static func updateEMA(_ ema: TrainableDiT, from model: TrainableDiT, decay: Float) {
        for (e, m) in zip(ema.parameters, model.parameters) {
            let ep = e.value.data, mp = m.value.data
            for i in 0..<e.value.count { ep[i] = decay * ep[i] + (1 - decay) * mp[i] }
        }
    }

    static func copy(from a: TrainableDiT, to b: TrainableDiT) {
        for (x, y) in zip(a.parameters, b.parameters) { y.value.data.update(from: x.value.data, count: x.value.count) }
    }

    // MARK: checkpoints

    static func checkpoints(in out: String) throws -> [String] {
        let dir = out + "/checkpoints"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") && Int($0.dropLast(".safetensors".count)) != nil }
            .sorted().map { dir + "/" + $0 }
    }

    public func save() throws {
        let args = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
        var w = SafeTensorsWriter(metadata: ["step": String(step), "args": args, "format": "dit-train-checkpoint"])
        model.stateDict(into: &w, prefix: "model.")
        ema.stateDict(into: &w, prefix: "ema.")
        optimizer.save(into: &w)
        let name = String(format: "%07d.safetensors", step)
        try w.write(to: out + "/checkpoints/" + name)
        var e = SafeTensorsWriter(metadata: ["step": String(step), "weights": "ema"])
        ema.stateDict(into: &e)
        try e.write(to: out + "/ema.safetensors")
        try AtomicFile.write(try TrainingOptions.configJSON(model.config, classDropoutProb: options.classDropoutProb), to: out + "/config.json")
        try AtomicFile.write(Data(args.utf8), to: out + "/args.json")
    }

    private func load(checkpoint path: String) throws {
        let f = try SafeTensorsFile(path: path)
        guard let s = f.metadata["step"].flatMap({ Int($0) }), s >= 0 else {
            throw WeightError.malformed(file: path, reason: "metadata 'step' is missing")
        }
        for (prefix, target) in [("model.", model), ("ema.", ema)] {
            for p in target.parameters {
                let t = try f.tensor(prefix + p.name, shape: p.value.shape)
                p.value.data.update(from: t.data, count: t.count)
            }
        }
        try optimizer.load(from: f, metadata: f.metadata)
        step = s
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return e
    }
}
