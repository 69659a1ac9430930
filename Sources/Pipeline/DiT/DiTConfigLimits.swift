import Foundation

/// Upper bounds on a DiT's shape, far above every published model (DiT-XL/2 at
/// 512 px: 1024 tokens, hidden 1152, 28 blocks), so that a hostile or mistyped
/// config is an error naming its key instead of an overflowing size or a
/// multi-GB allocation: `input_size` 2**29 with `patch_size` 1 would overflow the
/// sin-cos position table's (T, D) size; `input_size` 30000 would ask for tens
/// of GB of position table and attention scores (T² floats per thread).
public enum DiTLimits {
    /// Tokens per sample (grid²): 128 × 128, a 2048-px image at patch 2 with the SD VAE.
    public static let maxTokens = 1 << 14
    public static let maxInputSize = 1 << 13
    public static let maxPatchSize = 64
    public static let maxHiddenSize = 1 << 14
    public static let maxDepth = 512
    public static let maxInChannels = 1 << 10
    public static let maxClasses = 1 << 20
    public static let maxMLPWidth = 1 << 18
    /// Elements of the largest single weight (patch embedding, label table, MLP, q|k|v, final linear).
    public static let maxWeightElements = 1 << 31
}

extension DiTConfig {
    /// The config key that sets `field` in this config's key layout, for error messages.
    func keyName(_ field: String) -> String {
        let diffusers = layout == .diffusers
        switch field {
        case "inputSize": return diffusers ? "sample_size" : "input_size"
        case "hiddenSize": return diffusers ? "num_attention_heads × attention_head_dim" : "hidden_size"
        case "depth": return diffusers ? "num_layers" : "depth"
        case "numHeads": return diffusers ? "num_attention_heads" : "num_heads"
        case "numClasses": return diffusers ? "num_embeds_ada_norm" : "num_classes"
        case "mlpHiddenSize": return diffusers ? "the MLP width" : "mlp_ratio"
        default: return field
        }
    }

    /// Range checks with overflow-safe products; called by `validate`, errors name the key.
    func validateSizes(file: String) throws {
        func bad(_ r: String) -> DiTConfigError { .invalid(file: file, reason: r) }
        func check(_ field: String, _ value: Int, _ range: ClosedRange<Int>) throws {
            guard range.contains(value) else {
                throw bad("'\(keyName(field))' \(value) is outside \(range.lowerBound)...\(range.upperBound)")
            }
        }
        try check("inputSize", inputSize, 1...DiTLimits.maxInputSize)
        try check("patch_size", patchSize, 1...DiTLimits.maxPatchSize)
        try check("in_channels", inChannels, 1...DiTLimits.maxInChannels)
        try check("hiddenSize", hiddenSize, 1...DiTLimits.maxHiddenSize)
        try check("depth", depth, 0...DiTLimits.maxDepth)
        try check("numHeads", numHeads, 1...hiddenSize)
        try check("numClasses", numClasses, 1...DiTLimits.maxClasses)
        try check("mlpHiddenSize", mlpHiddenSize, 1...DiTLimits.maxMLPWidth)
        // Both factors are bounded now, so these products cannot overflow.
        let grid = inputSize / patchSize
        guard grid * grid <= DiTLimits.maxTokens else {
            throw bad("'\(keyName("inputSize"))' \(inputSize) with 'patch_size' \(patchSize) makes \(grid)×\(grid) tokens, more than \(DiTLimits.maxTokens)")
        }
        let p2 = patchSize * patchSize
        let weights: [(String, Int)] = [
            ("patch embedding (hidden × in_channels × patch_size²)", hiddenSize * inChannels * p2),
            ("final layer (patch_size² × out_channels × hidden)", p2 * outChannels * hiddenSize),
            ("label table ((num_classes + 1) × hidden)", labelTableRows * hiddenSize),
            ("MLP (width × hidden)", mlpHiddenSize * hiddenSize),
            ("attention q|k|v (3 × hidden²)", 3 * hiddenSize * hiddenSize),
        ]
        for (what, n) in weights where n > DiTLimits.maxWeightElements {
            throw bad("the \(what) would hold \(n) elements, more than \(DiTLimits.maxWeightElements)")
        }
    }

    /// `Int(hidden · mlp_ratio)` as the reference computes it, or -1 (refused by
    /// `validate` naming `mlp_ratio`) when the ratio is not finite or the width would not fit.
    static func mlpWidth(hiddenSize: Int, mlpRatio: Double) -> Int {
        let w = Double(hiddenSize) * mlpRatio
        guard w.isFinite, w >= 0, w < Double(1 << 52) else { return -1 }
        return Int(w)
    }
}
