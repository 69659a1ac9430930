import Foundation
import PipelineTensor

/// The autoencoder of pixel-space DiTs (`in_channels` 3): latents are the images themselves,
/// so the same pipeline runs without a VAE.
public final class IdentityAutoencoder: Autoencoder {
    public let imageChannels: Int
    public var latentChannels: Int { imageChannels }
    public var downsamplingFactor: Int { 1 }

    public init(channels: Int = 3) { imageChannels = channels }

    public func encode(_ images: Tensor) throws -> LatentDistribution {
        try checkImages(images, "identity autoencoder input")
        return LatentDistribution(pointMass: images.copy())
    }

    public func scaled(_ latents: Tensor) -> Tensor { latents.copy() }

    public func decode(_ scaledLatents: Tensor) throws -> Tensor {
        try checkImages(scaledLatents, "identity autoencoder latents")
        return scaledLatents.copy()
    }
}

/// Opens the autoencoder a command names: `identity` for a pixel-space DiT (its samples are
/// the images), else a diffusers AutoencoderKL folder or weights file.
public enum AutoencoderSpec {
    public static let identityName = "identity"

    public static func load(_ spec: String) throws -> Autoencoder {
        spec == identityName ? IdentityAutoencoder(channels: 3) : try AutoencoderKL.load(folder: spec)
    }
}
