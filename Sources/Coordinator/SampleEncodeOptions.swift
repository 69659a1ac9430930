import ArgumentParser
import CLIOptions
import Foundation
import PipelineJobs

/// `dit-worker sample`'s flags, plus the sharding one.
struct SampleOptions: KindOptions {
    static let kindName = "sample"
    static let abstract = "Sample with a DiT (+ VAE): PNGs by global index, labels, the ADM .npz and its recipe."
    @OptionGroup var sample: SampleArguments
    @Option(help: "Samples per shard.") var samplesPerShard = 64

    func spec() throws -> Data { try JobKinds.encode(sample.spec(samplesPerShard: samplesPerShard)) }
}

/// `dit-worker fidstats`'s flags, plus the sharding one.
struct FIDStatsOptions: KindOptions {
    static let kindName = "fidstats"
    static let abstract = "Inception statistics (mu, sigma, mu_s, sigma_s) + provenance of a folder, a sample job's output or an .npz, from per-shard partial statistics."
    @OptionGroup var stats: FIDStatsArguments
    @Option(help: "Images per shard (a multiple of --batch).") var imagesPerShard = 500

    func spec() throws -> Data { try JobKinds.encode(try stats.spec(imagesPerShard: imagesPerShard)) }
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
