import Foundation
import PipelineTensor

/// What the diffusion pipeline needs of the autoencoder between pixels and the space DiT
/// works in: `encode` gives the (unscaled) posterior, `scaled` maps a latent to what DiT
/// sees, `decode` maps DiT's output back to images in [−1, 1] (nominally; not clamped).
public protocol Autoencoder: AnyObject {
    var imageChannels: Int { get }
    var latentChannels: Int { get }
    /// Image side / latent side.
    var downsamplingFactor: Int { get }
    /// The posterior for images (N, imageChannels, H, W) in [−1, 1].
    func encode(_ images: Tensor) throws -> LatentDistribution
    /// The latent as the diffusion model sees it (the SD VAEs: z · 0.18215).
    func scaled(_ latents: Tensor) -> Tensor
    /// Images from latents in the diffusion model's scale.
    func decode(_ scaledLatents: Tensor) throws -> Tensor
}

extension Autoencoder {
    /// The (C, h, w) latent shape of an image of side `imageSize`.
    public func latentShape(imageSize: Int) -> [Int] {
        [latentChannels, imageSize / downsamplingFactor, imageSize / downsamplingFactor]
    }

    func checkImages(_ x: Tensor, _ what: String) throws {
        guard x.rank == 4, x.shape[1] == imageChannels else {
            throw VAEError.badInput(what: what, reason: "expected (N, \(imageChannels), H, W) images, got \(x.shape)")
        }
    }
}
