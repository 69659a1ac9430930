import ArgumentParser
import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT
import PipelineDiffusion

/// `dit-worker eval diffusion`: the reference's q_sample, training_losses and
/// samplers on a DiT, for the fixture format of ../shared/fixtures/diffusion.
struct EvalDiffusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Diffusion parity: x0,t,noise,y → x_t,loss,mse,vb; z_T,labels,cfg_scale,step_noise → ddpm_cfg,ddpm_nocfg,ddim_cfg.")

    @Option(help: "DiT weights: a .safetensors or .pt/.pth file, or a diffusers folder.") var weights: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "Input safetensors file.") var inputs: String
    @Option(help: "Output safetensors file.") var output: String
    @Option(help: "DDPM respacing (default: the inputs' metadata `respacing`).") var respacing: String?
    @Option(help: "DDIM respacing (default: the inputs' metadata `ddim_respacing`).") var ddimRespacing: String?
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    func run() throws {
        if let threads { Threads.set(threads) }
        let model = try DiT.load(path: weights, configFile: config, numHeads: numHeads)
        let out = try DiffusionEval.run(model: model, inputs: try SafeTensorsFile(path: inputs),
                                        options: .init(respacing: respacing, ddimRespacing: ddimRespacing))
        try out.write(to: output)
        print("wrote \(out.names.joined(separator: ", ")) to \(output)")
    }
}
