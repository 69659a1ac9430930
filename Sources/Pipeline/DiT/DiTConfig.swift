import Foundation

/// The twelve model sizes of the DiT paper (`models.py`'s `DiT_models`).
public enum DiTPreset: String, CaseIterable, Codable {
    case xl2 = "DiT-XL/2", xl4 = "DiT-XL/4", xl8 = "DiT-XL/8"
    case l2 = "DiT-L/2", l4 = "DiT-L/4", l8 = "DiT-L/8"
    case b2 = "DiT-B/2", b4 = "DiT-B/4", b8 = "DiT-B/8"
    case s2 = "DiT-S/2", s4 = "DiT-S/4", s8 = "DiT-S/8"

    public enum Size: String, CaseIterable { case s = "S", b = "B", l = "L", xl = "XL" }

    public var size: Size {
        switch self {
        case .xl2, .xl4, .xl8: return .xl
        case .l2, .l4, .l8: return .l
        case .b2, .b4, .b8: return .b
        case .s2, .s4, .s8: return .s
        }
    }

    public var patchSize: Int {
        switch self {
        case .xl2, .l2, .b2, .s2: return 2
        case .xl4, .l4, .b4, .s4: return 4
        case .xl8, .l8, .b8, .s8: return 8
        }
    }

    public var depth: Int { [.xl: 28, .l: 24, .b: 12, .s: 12][size]! }
    public var hiddenSize: Int { [.xl: 1152, .l: 1024, .b: 768, .s: 384][size]! }
    public var numHeads: Int { [.xl: 16, .l: 16, .b: 12, .s: 6][size]! }

    /// Parses "DiT-XL/2", also "DiT-XL-2", "XL/2", "dit_xl_2" (case-insensitive).
    public init?(parsing text: String) {
        var s = text.uppercased().replacingOccurrences(of: "_", with: "-")
        if s.hasPrefix("DIT-") { s.removeFirst(4) }
        let parts = s.split(whereSeparator: { $0 == "/" || $0 == "-" })
        guard parts.count == 2, let size = Size(rawValue: String(parts[0])), let p = Int(parts[1]),
              let preset = DiTPreset.allCases.first(where: { $0.size == size && $0.patchSize == p }) else { return nil }
        self = preset
    }

    /// The preset rule for the number of heads, by hidden size (S: 6, B: 12, L and XL: 16).
    public static func numHeads(forHiddenSize d: Int) -> Int? {
        Size.allCases.map { DiTPreset(parsing: "DiT-\($0.rawValue)/2")! }.first { $0.hiddenSize == d }?.numHeads
    }
}

/// Which state-dict key names a checkpoint uses.
public enum DiTKeyLayout: String, Equatable {
    /// facebookresearch/DiT `models.py` (released .pt files, `train.py` checkpoints).
    case reference
    /// diffusers `DiTTransformer2DModel` (per-block embedders, `proj_out_1/2`, split q/k/v).
    case diffusers
}

public enum DiTConfigError: Error, CustomStringConvertible, Equatable {
    case invalid(file: String, reason: String)
    case cannotInfer(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(f, r): return "\(f): invalid DiT config: \(r)"
        case let .cannotInfer(f, r): return "\(f): cannot infer the DiT configuration: \(r)"
        }
    }
}

/// A DiT's shape: the arguments of `models.py`'s `DiT(...)` constructor, plus what the
/// diffusers port changes (key layout, the second LayerNorm's eps).
public struct DiTConfig: Equatable {
    /// Spatial size of the (latent) input, `input_size`.
    public var inputSize: Int
    public var patchSize: Int
    public var inChannels: Int
    public var hiddenSize: Int
    public var depth: Int
    public var numHeads: Int
    /// `int(hidden_size * mlp_ratio)`.
    public var mlpHiddenSize: Int
    public var numClasses: Int
    /// `class_dropout_prob > 0`: the label table has a row for the null class (`num_classes`).
    public var hasNullClass: Bool
    public var learnSigma: Bool
    /// What the first `in_channels` output channels predict (see `DiTPrediction`).
    public var prediction: DiTPrediction = .epsilon
    public var layout: DiTKeyLayout
    /// eps of the LayerNorm before the MLP: 1e-6 in the reference; diffusers uses the
    /// config's `norm_eps` there (1e-5 by default) but 1e-6 before attention and at the end.
    public var mlpNormEps: Float

    public init(inputSize: Int, patchSize: Int, inChannels: Int, hiddenSize: Int, depth: Int, numHeads: Int,
                mlpRatio: Double = 4.0, numClasses: Int = 1000, hasNullClass: Bool = true, learnSigma: Bool = true,
                layout: DiTKeyLayout = .reference, mlpNormEps: Float = 1e-6) {
        self.inputSize = inputSize
        self.patchSize = patchSize
        self.inChannels = inChannels
        self.hiddenSize = hiddenSize
        self.depth = depth
        self.numHeads = numHeads
        self.mlpHiddenSize = DiTConfig.mlpWidth(hiddenSize: hiddenSize, mlpRatio: mlpRatio)
        self.numClasses = numClasses
        self.hasNullClass = hasNullClass
        self.learnSigma = learnSigma
        self.layout = layout
        self.mlpNormEps = mlpNormEps
    }

    /// A preset at a given latent size (`image_size / 8` for the SD VAE).
    public init(preset: DiTPreset, inputSize: Int = 32, inChannels: Int = 4, numClasses: Int = 1000,
                learnSigma: Bool = true) {
        self.init(inputSize: inputSize, patchSize: preset.patchSize, inChannels: inChannels,
                  hiddenSize: preset.hiddenSize, depth: preset.depth, numHeads: preset.numHeads,
                  numClasses: numClasses, learnSigma: learnSigma)
    }

    /// `in_channels * 2` when the model learns the variance, else `in_channels`.
    public var outChannels: Int { learnSigma ? inChannels * 2 : inChannels }
    public var gridSize: Int { inputSize / patchSize }
    public var tokens: Int { gridSize * gridSize }
    public var headDim: Int { hiddenSize / numHeads }
    public var labelTableRows: Int { numClasses + (hasNullClass ? 1 : 0) }
    /// The preset this shape matches, if any.
    public var preset: DiTPreset? {
        DiTPreset.allCases.first {
            $0.depth == depth && $0.hiddenSize == hiddenSize && $0.patchSize == patchSize && $0.numHeads == numHeads
        }
    }

    /// Checks the invariants the model relies on; `file` names the source in the error.
    public func validate(file: String) throws {
        func bad(_ r: String) -> DiTConfigError { .invalid(file: file, reason: r) }
        guard patchSize > 0, inputSize > 0, inputSize % patchSize == 0 else {
            throw bad("input_size \(inputSize) is not a positive multiple of patch_size \(patchSize)")
        }
        guard inChannels > 0, depth >= 0, numClasses > 0, mlpHiddenSize > 0 else {
            throw bad("in_channels \(inChannels), depth \(depth), num_classes \(numClasses), mlp width \(mlpHiddenSize) (from '\(keyName("mlpHiddenSize"))') must be positive")
        }
        guard hiddenSize > 0, numHeads > 0, hiddenSize % numHeads == 0 else {
            throw bad("hidden_size \(hiddenSize) is not divisible by num_heads \(numHeads)")
        }
        try validateSizes(file: file)
    }
}

/// What a DiT's first `in_channels` output channels predict: the noise (DiT's default, ADM's
/// `ModelMeanType.EPSILON`) or the clean input x0 (`create_diffusion(predict_xstart=True)`,
/// `ModelMeanType.START_X`). Not an argument of the model's constructor but of its diffusion, so the
/// reference keeps it outside the weights; `config.json` records it as `predict_xstart` (written only
/// when true) so that training, sampling and evaluation agree on it.
public enum DiTPrediction: String, Codable, Sendable {
    case epsilon
    case xStart = "x0"
}

