import ArgumentParser
import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT
import PipelineDiffusion

/// `dit-worker eval sampler`: diffusers' schedulers driven as `DiTPipeline` drives them, for
/// the fixture format of ../shared/fixtures/samplers.
struct EvalSampler: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampler",
        abstract: "Scheduler parity: z_T, y, cfg_scale (+ metadata samplers, steps, <name>_config) → <name>_<steps>, <name>_<steps>_timesteps.")

    @Option(help: "DiT weights: a .safetensors or .pt/.pth file, or a diffusers folder.") var weights: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "Input safetensors file.") var inputs: String
    @Option(help: "Output safetensors file.") var output: String
    @Option(help: "Samplers (comma-separated; default: the inputs' metadata `samplers`).") var samplers: String?
    @Option(help: "Step counts (comma-separated; default: the inputs' metadata `steps`).") var steps: String?
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    func run() throws {
        if let threads { Threads.set(threads) }
        let model = try DiT.load(path: weights, configFile: config, numHeads: numHeads)
        let counts = try steps.map { try $0.split(separator: ",").map { s -> Int in
            guard let k = Int(s), k > 0 else { throw ValidationError("--steps: \"\(s)\" is not a positive integer") }
            return k
        } }
        let out = try SchedulerEval.run(model: model, inputs: try SafeTensorsFile(path: inputs),
                                        samplers: samplers.map { $0.split(separator: ",").map(String.init) }, steps: counts)
        try out.write(to: output)
        print("wrote \(out.names.joined(separator: ", ")) to \(output)")
    }
}
