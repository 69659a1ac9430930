import Foundation
import PipelineDiT

/// The arguments of a training run (`train.py`'s `args` in spirit), stored as `args.json`
/// beside the checkpoints and in each checkpoint's metadata.
public struct TrainingOptions: Codable, Equatable {
    /// A preset name ("DiT-S/2") or "custom" (the sizes below).
    public var model: String = "custom"
    public var imageSize: Int = 32
    public var inChannels: Int = 3
    public var patchSize: Int = 4
    public var hiddenSize: Int = 128
    public var depth: Int = 4
    public var numHeads: Int = 4
    public var mlpRatio: Double = 4
    public var numClasses: Int = 4
    public var learnSigma: Bool = true
    /// `create_diffusion(predict_xstart=True)`: the model predicts x0 and the MSE is against x0
    /// (with `learnSigma == false` only: the trainer's vb term is the epsilon one).
    public var predictXstart: Bool = false
    /// Label dropout: each label is replaced by the null class (`num_classes`) with this probability.
    public var classDropoutProb: Double = 0.1
    public var data: String = ""
    public var steps: Int = 1000
    public var batch: Int = 32
    public var lr: Double = 1e-4
    /// Linear learning-rate warm-up from lr/warmupSteps to lr over the first steps (0: none, as train.py).
    public var warmupSteps: Int = 0
    /// After the warm-up: constant (train.py) or a cosine decay to `minLR` at `steps`.
    public var lrSchedule: LRSchedule = .constant
    public var minLR: Double = 0
    /// train.py: AdamW(lr=1e-4, weight_decay=0).
    public var weightDecay: Double = 0
    public var emaDecay: Double = 0.9999
    /// Max global gradient norm (`clip_grad_norm_`); nil: no clipping (train.py does none).
    public var gradClip: Double? = nil
    public var seed: UInt64 = 0
    public var checkpointEvery: Int = 500
    public var logEvery: Int = 50
    public var diffusionSteps: Int = 1000
    /// Weights (any file `DiT.load` reads, of this configuration) that a fresh run starts from
    /// instead of the random initialisation, e.g. an earlier run's EMA; nil: random.
    public var initWeights: String? = nil

    public init() {}

    /// The learning-rate shape after the warm-up.
    public enum LRSchedule: String, Codable, CaseIterable {
        case constant, cosine
    }

    /// The learning rate of optimisation step `step` (0-based: the step that makes checkpoint step + 1).
    public func learningRate(atStep step: Int) -> Double {
        if warmupSteps > 0, step < warmupSteps { return lr * Double(step + 1) / Double(warmupSteps) }
        switch lrSchedule {
        case .constant: return lr
        case .cosine:
            let span = max(steps - warmupSteps, 1)
            let progress = min(max(Double(step - warmupSteps) / Double(span), 0), 1)
            return minLR + (lr - minLR) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }

    // Decoding: keys added after the first runs (warm-up, schedule) default as `init()` sets them,
    // so that an older run's args.json still decodes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingOptions()
        func v<T: Decodable>(_ k: CodingKeys, _ def: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? def }
        model = try v(.model, d.model); imageSize = try v(.imageSize, d.imageSize)
        inChannels = try v(.inChannels, d.inChannels); patchSize = try v(.patchSize, d.patchSize)
        hiddenSize = try v(.hiddenSize, d.hiddenSize); depth = try v(.depth, d.depth)
        numHeads = try v(.numHeads, d.numHeads); mlpRatio = try v(.mlpRatio, d.mlpRatio)
        numClasses = try v(.numClasses, d.numClasses); learnSigma = try v(.learnSigma, d.learnSigma)
        predictXstart = try v(.predictXstart, d.predictXstart)
        classDropoutProb = try v(.classDropoutProb, d.classDropoutProb); data = try v(.data, d.data)
        steps = try v(.steps, d.steps); batch = try v(.batch, d.batch); lr = try v(.lr, d.lr)
        warmupSteps = try v(.warmupSteps, d.warmupSteps); lrSchedule = try v(.lrSchedule, d.lrSchedule)
        minLR = try v(.minLR, d.minLR); weightDecay = try v(.weightDecay, d.weightDecay)
        emaDecay = try v(.emaDecay, d.emaDecay); gradClip = try c.decodeIfPresent(Double.self, forKey: .gradClip)
        seed = try v(.seed, d.seed); checkpointEvery = try v(.checkpointEvery, d.checkpointEvery)
        logEvery = try v(.logEvery, d.logEvery); diffusionSteps = try v(.diffusionSteps, d.diffusionSteps)
        initWeights = try c.decodeIfPresent(String.self, forKey: .initWeights)
    }

    /// The model configuration these options describe.
    public func modelConfig() throws -> DiTConfig {
        var c: DiTConfig
        if model.lowercased() == "custom" {
            guard patchSize > 0, imageSize % patchSize == 0 else {
                throw DiTConfigError.invalid(file: "train options", reason: "image size \(imageSize) is not a multiple of patch size \(patchSize)")
            }
            c = DiTConfig(inputSize: imageSize, patchSize: patchSize, inChannels: inChannels, hiddenSize: hiddenSize,
                          depth: depth, numHeads: numHeads, mlpRatio: mlpRatio, numClasses: numClasses,
                          hasNullClass: true, learnSigma: learnSigma)
        } else {
            guard let p = DiTPreset(parsing: model) else {
                throw DiTConfigError.invalid(file: "train options", reason: "unknown model '\(model)' (a preset such as DiT-S/2, or custom)")
            }
            c = DiTConfig(preset: p, inputSize: imageSize, inChannels: inChannels, numClasses: numClasses)
            c.learnSigma = learnSigma
        }
        if predictXstart {
            guard !c.learnSigma else {
                throw DiTConfigError.invalid(file: "train options", reason: "predict_xstart is trained with the MSE loss only: add --no-learn-sigma (the trainer's learned-variance vb term is the epsilon-prediction one)")
            }
            c.prediction = .xStart
        }
        guard warmupSteps >= 0, lr > 0, minLR >= 0, minLR <= lr else {
            throw DiTConfigError.invalid(file: "train options", reason: "need lr > 0, 0 <= min lr <= lr and warm-up steps >= 0")
        }
        guard classDropoutProb >= 0, classDropoutProb < 1 else {
            throw DiTConfigError.invalid(file: "train options", reason: "class_dropout_prob \(classDropoutProb) is outside [0, 1)")
        }
        try c.validate(file: "train options")
        return c
    }

    /// `config.json` with DiT's constructor arguments, as `DiT.load` reads it.
    public static func configJSON(_ c: DiTConfig, classDropoutProb: Double) throws -> Data {
        var dict: [String: Any] = [
            "input_size": c.inputSize, "patch_size": c.patchSize, "in_channels": c.inChannels,
            "hidden_size": c.hiddenSize, "depth": c.depth, "num_heads": c.numHeads,
            "mlp_ratio": Double(c.mlpHiddenSize) / Double(c.hiddenSize), "class_dropout_prob": classDropoutProb,
            "num_classes": c.numClasses, "learn_sigma": c.learnSigma,
        ]
        if c.prediction == .xStart { dict["predict_xstart"] = true }
        return try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
    }
}
