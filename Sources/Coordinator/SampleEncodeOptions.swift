import ArgumentParser
import Foundation
import Pipeline

/// `dit-worker sample`'s flags, plus the sharding ones.
struct SampleOptions: KindOptions {
    static let kindName = "sample"
    static let abstract = "Sample with a DiT (+ VAE): PNGs by global index, labels, the ADM .npz and its recipe."
    @Option(help: "DiT weights (file or diffusers folder), or random:PRESET (e.g. random:DiT-S/2).") var dit: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "Image size in pixels for a random:PRESET model (latent = size / 8).") var imageSize = 256
    @Option(help: "VAE (diffusers folder), or `identity` for a pixel-space DiT; without it the job writes latents.") var vae: String?
    @Option(help: "Number of samples.") var numSamples: Int
    @Option(help: "Seed of the noise and of the labels.") var seed: UInt64 = 0
    @Option(help: "Classifier-free guidance scale (1 = no guidance).") var cfgScale: Float = 1.5
    @Flag(help: "Guide all eps channels instead of the reference's first 3.") var guideAllChannels = false
    @Option(help: "ddpm or ddim.") var sampler: String = "ddpm"
    @Option(help: "Sampling steps.") var steps: Int = 250
    @Option(help: "Explicit respacing: N, N1,N2,..., or ddimN.") var respacing: String?
    @Option(help: "DDIM eta.") var eta: Float = 0
    @Option(help: "uniform, balanced, or a file of labels.") var labels = "uniform"
    @Option(help: "Output folder (shared by coordinator and workers).") var out: String
    @Option(help: "Samples per sampler batch.") var batch = 16
    @Option(help: "per-sample or batched model calls.") var modelCalls = "per-sample"
    @Option(help: "Samples per shard.") var samplesPerShard = 64

    func spec() throws -> Data {
        try JobKinds.encode(SampleSpec(
            outputDir: absolute(out), dit: dit.hasPrefix("random:") ? dit : absolute(dit), config: config.map(absolute),
            numHeads: numHeads, imageSize: imageSize, vae: vae.map { $0 == AutoencoderSpec.identityName ? $0 : absolute($0) }, numSamples: numSamples, seed: seed,
            cfgScale: cfgScale, guideAllChannels: guideAllChannels, sampler: sampler, steps: steps, respacing: respacing,
            eta: eta, labels: ["uniform", "balanced"].contains(labels) ? labels : absolute(labels), batch: batch,
            modelCalls: modelCalls, samplesPerShard: samplesPerShard))
    }
}

struct EncodeOptions: KindOptions {
    static let kindName = "encode"
    static let abstract = "Encode an ImageFolder tree to VAE latent shards (+ fast-DiT's per-image layout)."
    @Option(help: "Image folder (root/<class>/**/<image>).") var folder: String
    @Option(help: "VAE (diffusers folder).") var vae: String
    @Option(help: "Output folder (shared by coordinator and workers).") var out: String
    @Option(help: "ADM center-crop size in pixels.") var imageSize = 256
    @Option(help: "Seed of the posterior noise.") var seed: UInt64 = 0
    @Flag(help: "Also encode the horizontally flipped images.") var flip = false
    @Option(help: "Images per VAE batch.") var batch = 8
    @Option(help: "Images per shard.") var imagesPerShard = 256
    @Option(help: "Also write fast-DiT's layout: features/{i}.npy, labels/{i}.npy (value: fast-dit).") var layout: String?

    func spec() throws -> Data {
        guard layout == nil || layout == "fast-dit" else { throw ValidationError("--layout must be fast-dit") }
        return try JobKinds.encode(EncodeSpec(
            outputDir: absolute(out), folder: absolute(folder), vae: absolute(vae), imageSize: imageSize, seed: seed,
            flip: flip, batch: batch, imagesPerShard: imagesPerShard, fastDiTLayout: layout == "fast-dit"))
    }
}
