import ArgumentParser
import Foundation
import PipelineDiffusion

/// `dit-worker eval sampler`: diffusers' schedulers driven as `DiTPipeline` drives them, for
/// the fixture format of ../shared/fixtures/samplers.
struct EvalSampler: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampler",
        abstract: "Scheduler parity: z_T, y, cfg_scale (+ metadata samplers, steps, <name>_config) → <name>_<steps>, <name>_<steps>_timesteps.")

    @OptionGroup var io: EvalDiTOptions
    @Option(help: "Samplers (comma-separated; default: the inputs' metadata `samplers`).") var samplers: String?
    @Option(help: "Step counts (comma-separated; default: the inputs' metadata `steps`).") var steps: String?

    func run() throws {
        let counts = try steps.map { try $0.split(separator: ",").map { s -> Int in
            guard let k = Int(s), k > 0 else { throw ValidationError("--steps: \"\(s)\" is not a positive integer") }
            return k
        } }
        try io.run { model, inputs in
            try SchedulerEval.run(model: model, inputs: inputs, samplers: samplers.map { $0.split(separator: ",").map(String.init) },
                                  steps: counts)
        }
    }
}
