import ArgumentParser
import Foundation
import PipelineDiffusion
import PipelineJobs

extension NoiseX0Source: ExpressibleByArgument {}

/// The flags of `dit-worker noise` (single process), also taken by `dit-coordinator run noise`
/// and `submit noise` (the distributed job). `--items-per-shard` is here too: the single-process
/// command writes the same shard files as the job.
public struct NoiseArguments: ParsableArguments {
    public static let kindName = "noise"
    public static let abstractText = "Noise an encode job's latents into (x_t, t, eps, y) shards (+ a DiT's mse/vb losses per timestep bucket)."

    @Option(help: "The encode job's output folder (or its manifest.json).")
    public var input: String
    @Option(help: "Output folder (shared by coordinator and workers).")
    public var out: String
    @Option(help: "Seed of the draws: t, eps (and x0) of image i, draw k are keyed by (seed, i, k).")
    public var seed: UInt64 = 0
    @Option(help: "Draws (t, eps) per image.")
    public var draws = 1
    @Option(help: "x0: resample (a posterior sample from the stored mean/std, re-drawn per (seed, i, k)) or stored (the encode job's scaled latent).")
    public var x0: NoiseX0Source = .resample
    @Flag(help: "Take the horizontally flipped image (encode --flip) for the draws whose coin, keyed by (seed, i, k), says so.")
    public var flip = false
    @Option(help: "Noise schedule: linear or cosine.")
    public var noiseSchedule = "linear"
    @Option(help: "Diffusion steps T (t is uniform in 0..<T).")
    public var diffusionSteps = 1000
    @Option(help: "DiT weights (file or diffusers folder) or random:PRESET: also write its mse/vb losses per item and a report per timestep bucket.")
    public var dit: String?
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.")
    public var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.")
    public var numHeads: Int?
    @Option(help: "Timestep buckets of the loss report (equal buckets over [0, T)).")
    public var buckets = 10
    @Option(help: "Images per shard (each gives --draws rows).")
    public var itemsPerShard = 256

    public init() {}

    public func spec() throws -> Data {
        try JobKinds.encode(NoiseSpec(
            outputDir: Self.absolute(out), input: Self.absolute(input), seed: seed, draws: draws, x0: x0, flip: flip,
            schedule: noiseSchedule, diffusionSteps: diffusionSteps,
            dit: dit.map { $0.hasPrefix("random:") ? $0 : Self.absolute($0) }, config: config.map(Self.absolute),
            numHeads: numHeads, buckets: buckets, itemsPerShard: itemsPerShard))
    }

    /// The loss report's table once the job is done (nil without --dit).
    public func lossTable() throws -> String? {
        guard dit != nil else { return nil }
        let report = try NoiseLossReport.load(Self.absolute(out) + "/" + NoiseLossReport.fileName)
        return "losses per timestep bucket (\(Self.absolute(out))/\(NoiseLossReport.fileName)):\n" + report.table
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}
