import Foundation

/// Errors from reading a VAE folder or config.
public enum VAEError: Error, CustomStringConvertible, Equatable {
    case badConfig(file: String, reason: String)
    case noWeights(folder: String)
    case badInput(what: String, reason: String)

    public var description: String {
        switch self {
        case let .badConfig(f, r): return "\(f): invalid AutoencoderKL config: \(r)"
        case let .noWeights(d):
            return "\(d): no diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin in the folder"
        case let .badInput(w, r): return "\(w): \(r)"
        }
    }
}

/// diffusers' encoder block kinds. AutoencoderKL only builds `DownEncoderBlock2D`.
public enum VAEDownBlockType: String, Codable, Equatable, Sendable {
    case downEncoderBlock2D = "DownEncoderBlock2D"
}

/// diffusers' decoder block kinds. AutoencoderKL only builds `UpDecoderBlock2D`.
public enum VAEUpBlockType: String, Codable, Equatable, Sendable {
    case upDecoderBlock2D = "UpDecoderBlock2D"
}

/// The activation named by `act_fn`; the SD VAEs use SiLU.
public enum VAEActivation: String, Codable, Equatable, Sendable {
    case silu
}

/// diffusers `AutoencoderKL` constructor arguments, as its `config.json` stores them.
public struct AutoencoderKLConfig: Equatable, Sendable {
    public var inChannels: Int               // in_channels
    public var outChannels: Int              // out_channels
    public var blockOutChannels: [Int]       // block_out_channels
    public var layersPerBlock: Int           // layers_per_block
    public var latentChannels: Int           // latent_channels
    public var normNumGroups: Int            // norm_num_groups
    public var scalingFactor: Float          // scaling_factor
    public var shiftFactor: Float?           // shift_factor (null for the SD VAEs)
    public var useQuantConv: Bool            // use_quant_conv
    public var usePostQuantConv: Bool        // use_post_quant_conv
    public var midBlockAddAttention: Bool    // mid_block_add_attention
    public var downBlockTypes: [VAEDownBlockType]  // down_block_types
    public var upBlockTypes: [VAEUpBlockType]      // up_block_types
    public var activation: VAEActivation     // act_fn

    /// GroupNorm epsilon inside the encoder and decoder (diffusers hard-codes 1e-6).
    public static let normEps: Float = 1e-6

    public init(inChannels: Int = 3, outChannels: Int = 3, blockOutChannels: [Int], layersPerBlock: Int,
                latentChannels: Int, normNumGroups: Int = 32, scalingFactor: Float, shiftFactor: Float? = nil,
                useQuantConv: Bool = true, usePostQuantConv: Bool = true, midBlockAddAttention: Bool = true,
                activation: VAEActivation = .silu) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.blockOutChannels = blockOutChannels
        self.layersPerBlock = layersPerBlock
        self.latentChannels = latentChannels
        self.normNumGroups = normNumGroups
        self.scalingFactor = scalingFactor
        self.shiftFactor = shiftFactor
        self.useQuantConv = useQuantConv
        self.usePostQuantConv = usePostQuantConv
        self.midBlockAddAttention = midBlockAddAttention
        self.downBlockTypes = Array(repeating: .downEncoderBlock2D, count: blockOutChannels.count)
        self.upBlockTypes = Array(repeating: .upDecoderBlock2D, count: blockOutChannels.count)
        self.activation = activation
    }

    /// `stabilityai/sd-vae-ft-ema` and `sd-vae-ft-mse` (the VAEs DiT uses): 8x down-sampling,
    /// 4 latent channels, scaling 0.18215.
    public static let stableDiffusion = AutoencoderKLConfig(
        blockOutChannels: [128, 256, 512, 512], layersPerBlock: 2, latentChannels: 4, scalingFactor: 0.18215)

    /// Spatial down-sampling factor between image and latent: 2^(blocks-1).
    public var downsamplingFactor: Int { 1 << max(blockOutChannels.count - 1, 0) }

    /// Checks the numbers make a buildable model.
    public func validate(source: String) throws {
        func bad(_ r: String) -> VAEError { .badConfig(file: source, reason: r) }
        guard !blockOutChannels.isEmpty else { throw bad("block_out_channels is empty") }
        guard blockOutChannels.count <= 8 else { throw bad("more than 8 blocks") }
        guard normNumGroups > 0 else { throw bad("norm_num_groups must be positive") }
        for c in blockOutChannels where c <= 0 || c % normNumGroups != 0 || c > 1 << 16 {
            throw bad("block_out_channels \(blockOutChannels) must be positive multiples of norm_num_groups \(normNumGroups)")
        }
        guard (1...64).contains(layersPerBlock) else { throw bad("layers_per_block \(layersPerBlock) out of range") }
        guard (1...1024).contains(latentChannels) else { throw bad("latent_channels \(latentChannels) out of range") }
        guard (1...64).contains(inChannels), (1...64).contains(outChannels) else {
            throw bad("in_channels/out_channels out of range")
        }
        guard downBlockTypes.count == blockOutChannels.count else {
            throw bad("\(downBlockTypes.count) down_block_types for \(blockOutChannels.count) block_out_channels")
        }
        guard upBlockTypes.count == blockOutChannels.count else {
            throw bad("\(upBlockTypes.count) up_block_types for \(blockOutChannels.count) block_out_channels")
        }
        guard scalingFactor.isFinite, scalingFactor != 0 else { throw bad("scaling_factor must be finite and non-zero") }
        if let s = shiftFactor, !s.isFinite { throw bad("shift_factor must be finite") }
    }
}

extension AutoencoderKLConfig: Decodable {
    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case activation = "act_fn"
    }

    /// Missing keys take diffusers' constructor defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let blocks = try c.decodeIfPresent([Int].self, forKey: .blockOutChannels) ?? [64]
        self.init(
            inChannels: try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3,
            outChannels: try c.decodeIfPresent(Int.self, forKey: .outChannels) ?? 3,
            blockOutChannels: blocks,
            layersPerBlock: try c.decodeIfPresent(Int.self, forKey: .layersPerBlock) ?? 1,
            latentChannels: try c.decodeIfPresent(Int.self, forKey: .latentChannels) ?? 4,
            normNumGroups: try c.decodeIfPresent(Int.self, forKey: .normNumGroups) ?? 32,
            scalingFactor: try c.decodeIfPresent(Float.self, forKey: .scalingFactor) ?? 0.18215,
            shiftFactor: try c.decodeIfPresent(Float.self, forKey: .shiftFactor),
            useQuantConv: try c.decodeIfPresent(Bool.self, forKey: .useQuantConv) ?? true,
            usePostQuantConv: try c.decodeIfPresent(Bool.self, forKey: .usePostQuantConv) ?? true,
            midBlockAddAttention: try c.decodeIfPresent(Bool.self, forKey: .midBlockAddAttention) ?? true,
            activation: try c.decodeIfPresent(VAEActivation.self, forKey: .activation) ?? .silu)
        downBlockTypes = try c.decodeIfPresent([VAEDownBlockType].self, forKey: .downBlockTypes)
            ?? Array(repeating: .downEncoderBlock2D, count: blocks.count)
        upBlockTypes = try c.decodeIfPresent([VAEUpBlockType].self, forKey: .upBlockTypes)
            ?? Array(repeating: .upDecoderBlock2D, count: blocks.count)
    }

    /// Reads and validates a diffusers `config.json`.
    public static func load(path: String) throws -> AutoencoderKLConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw VAEError.badConfig(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        let config: AutoencoderKLConfig
        do { config = try JSONDecoder().decode(AutoencoderKLConfig.self, from: data) } catch let e as DecodingError {
            throw VAEError.badConfig(file: path, reason: describe(e))
        } catch {
            throw VAEError.badConfig(file: path, reason: "\(error)")
        }
        try config.validate(source: path)
        return config
    }

    private static func describe(_ e: DecodingError) -> String {
        func at(_ ctx: DecodingError.Context) -> String {
            let p = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return p.isEmpty ? ctx.debugDescription : "\(p): \(ctx.debugDescription)"
        }
        switch e {
        case let .dataCorrupted(c): return at(c)
        case let .keyNotFound(k, c): return "missing \(k.stringValue) (\(at(c)))"
        case let .typeMismatch(_, c): return at(c)
        case let .valueNotFound(_, c): return at(c)
        @unknown default: return "\(e)"
        }
    }
}
