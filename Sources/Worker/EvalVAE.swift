import ArgumentParser
import Foundation
import PipelineTensor
import PipelineFiles
import PipelineWeights
import PipelineVAE

struct EvalVAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "AutoencoderKL: image -> mean, logvar (posterior), decoded = decode(mean).")

    @Option(help: "diffusers folder (config.json + diffusion_pytorch_model.safetensors or .bin), or a weights file (config.json beside it, else inferred).")
    var weights: String
    @Option(help: "safetensors file holding `image` (N, 3, H, W) in [-1, 1].") var inputs: String
    @Option var output: String
    @Option var threads = 2

    func run() throws {
        Threads.set(threads)
        let vae = try AutoencoderKL.load(folder: weights)
        let image = try WeightsFile.open(inputs).tensor("image")
        let posterior = try vae.encode(image)
        var out = SafeTensorsWriter()
        out.add("mean", posterior.mean)
        if let logvar = posterior.logvar { out.add("logvar", logvar) }
        out.add("decoded", try vae.decodeUnscaled(posterior.mean))
        try out.write(to: output)
    }
}
