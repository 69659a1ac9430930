import ArgumentParser
import Foundation
import PipelineDiffusion

/// `dit-worker eval diffusion`: the reference's q_sample, training_losses and
/// samplers on a DiT, for the fixture format of ../shared/fixtures/diffusion.
struct EvalDiffusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diffusion",
        abstract: "Diffusion parity: x0,t,noise,y → x_t,loss,mse,vb; z_T,labels,cfg_scale,step_noise → ddpm_cfg,ddpm_nocfg,ddim_cfg.")

    @OptionGroup var io: EvalDiTOptions
    @Option(help: "DDPM respacing (default: the inputs' metadata `respacing`).") var respacing: String?
    @Option(help: "DDIM respacing (default: the inputs' metadata `ddim_respacing`).") var ddimRespacing: String?

    func run() throws {
        try io.run { model, inputs in
            try DiffusionEval.run(model: model, inputs: inputs, options: .init(respacing: respacing, ddimRespacing: ddimRespacing))
        }
    }
}
