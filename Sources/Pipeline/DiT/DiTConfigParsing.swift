import Foundation

extension DiTConfig {
    /// Reads a `config.json`: either DiT's constructor arguments (`input_size`, `patch_size`,
    /// `in_channels`, `hidden_size`, `depth`, `num_heads`, `mlp_ratio`, `class_dropout_prob`,
    /// `num_classes`, `learn_sigma`, and `predict_xstart` of its diffusion; a `model` key such as "DiT-XL/2" supplies a preset's sizes)
    /// or diffusers' `DiTTransformer2DModel` keys. Absent keys take the constructor's defaults.
    public static func parse(json data: Data, file: String) throws -> DiTConfig {
        guard let obj = try? JSONSerialization.jsonObject(with: data), let dict = obj as? [String: Any] else {
            throw DiTConfigError.invalid(file: file, reason: "not a JSON object")
        }
        let keys = ConfigKeys(dict: dict, file: file)
        let isDiffusers = (dict["_class_name"] as? String).map { $0.contains("Transformer2D") } ?? false
            || dict["num_attention_heads"] != nil || dict["attention_head_dim"] != nil
        return isDiffusers ? try parseDiffusers(keys) : try parseReference(keys)
    }

    public static func load(configFile path: String) throws -> DiTConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DiTConfigError.invalid(file: path, reason: "cannot read the file")
        }
        return try parse(json: data, file: path)
    }

    private static func parseReference(_ k: ConfigKeys) throws -> DiTConfig {
        // Defaults: models.py's DiT.__init__ (which are DiT-XL/2 at 256 px).
        var depth = 28, hidden = 1152, patch = 2, heads = 16
        if let name = try k.string("model") {
            guard let p = DiTPreset(parsing: name) else {
                throw DiTConfigError.invalid(file: k.file, reason: "unknown model '\(name)' (expected e.g. DiT-XL/2)")
            }
            depth = p.depth; hidden = p.hiddenSize; patch = p.patchSize; heads = p.numHeads
        }
        var inputSize = 32
        if let s = try k.int("input_size") { inputSize = s }
        else if let image = try k.int("image_size") { inputSize = image / 8 }  // train.py args: latent = image / 8
        let dropout = try k.double("class_dropout_prob") ?? 0.1
        var c = DiTConfig(inputSize: inputSize, patchSize: try k.int("patch_size") ?? patch,
                          inChannels: try k.int("in_channels") ?? 4, hiddenSize: try k.int("hidden_size") ?? hidden,
                          depth: try k.int("depth") ?? depth, numHeads: try k.int("num_heads") ?? heads,
                          mlpRatio: try k.double("mlp_ratio") ?? 4.0, numClasses: try k.int("num_classes") ?? 1000,
                          hasNullClass: dropout > 0, learnSigma: try k.bool("learn_sigma") ?? true,
                          layout: .reference, mlpNormEps: 1e-6)
        if try k.bool("predict_xstart") ?? false { c.prediction = .xStart }
        try c.validate(file: k.file)
        return c
    }

    private static func parseDiffusers(_ k: ConfigKeys) throws -> DiTConfig {
        func bad(_ r: String) -> DiTConfigError { .invalid(file: k.file, reason: r) }
        // Defaults: diffusers' DiTTransformer2DModel.__init__.
        let heads = try k.int("num_attention_heads") ?? 16
        let headDim = try k.int("attention_head_dim") ?? 72
        let inC = try k.int("in_channels") ?? 4
        let outC = try k.int("out_channels") ?? inC
        guard outC == inC || outC == 2 * inC else {
            throw bad("out_channels \(outC) is neither in_channels \(inC) nor twice it")
        }
        let normType = try k.string("norm_type") ?? "ada_norm_zero"
        guard normType == "ada_norm_zero" else { throw bad("norm_type '\(normType)' is not ada_norm_zero") }
        let act = try k.string("activation_fn") ?? "gelu-approximate"
        guard act == "gelu-approximate" else { throw bad("activation_fn '\(act)' is not gelu-approximate") }
        guard try k.bool("norm_elementwise_affine") != true else { throw bad("norm_elementwise_affine must be false") }
        guard try k.bool("attention_bias") != false else { throw bad("attention_bias must be true") }
        guard let classes = try k.int("num_embeds_ada_norm") ?? Optional(1000) else { throw bad("num_embeds_ada_norm is null") }
        let eps = try k.double("norm_eps") ?? 1e-5
        guard eps.isFinite, eps > 0, eps < 1 else { throw bad("'norm_eps' \(eps) is not a small positive number") }
        let c = DiTConfig(inputSize: try k.int("sample_size") ?? 32, patchSize: try k.int("patch_size") ?? 2,
                          inChannels: inC, hiddenSize: heads * headDim, depth: try k.int("num_layers") ?? 28,
                          numHeads: heads, mlpRatio: 4.0, numClasses: classes,
                          // CombinedTimestepLabelEmbeddings always has class_dropout_prob 0.1: a null-class row.
                          hasNullClass: true, learnSigma: outC == 2 * inC,
                          layout: .diffusers, mlpNormEps: Float(eps))
        try c.validate(file: k.file)
        return c
    }
}

/// Typed access to a JSON config's values, with errors naming the key.
private struct ConfigKeys {
    let dict: [String: Any]
    let file: String

    /// JSON `true`/`false` arrive as NSNumber of C type `char`.
    private func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    private func present(_ key: String) -> Any? {
        guard let v = dict[key], !(v is NSNull) else { return nil }
        return v
    }

    private func wrongType(_ key: String, _ want: String) -> DiTConfigError {
        .invalid(file: file, reason: "'\(key)' is \(dict[key].map { "\($0)" } ?? "absent"), expected \(want)")
    }

    func int(_ key: String) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard let n = v as? NSNumber, !isBool(n),
              n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 1e9 else { throw wrongType(key, "an integer") }
        return n.intValue
    }

    func double(_ key: String) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard let n = v as? NSNumber, !isBool(n) else { throw wrongType(key, "a number") }
        return n.doubleValue
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = present(key) else { return nil }
        guard let n = v as? NSNumber, isBool(n) else { throw wrongType(key, "true or false") }
        return n.boolValue
    }

    func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v as? String else { throw wrongType(key, "a string") }
        return s
    }
}
