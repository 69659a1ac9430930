import ArgumentParser
import Foundation
import PipelineTensor
import PipelineWeights
import PipelineDiT

/// `dit-worker eval dit`: forward (and forward_with_cfg) of a DiT on IN.safetensors.
struct EvalDiT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dit",
        abstract: "Run a DiT: reads x, t, y (and cfg_x, cfg_t, cfg_y, cfg_scale), writes out (and cfg_out).")

    @Option(help: "A .safetensors or .pt/.pth file, or a diffusers folder.") var weights: String
    @Option(help: "A config.json (DiT constructor or diffusers keys); default: config.json beside the weights, else inferred.")
    var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "Which weights of a train.py checkpoint: ema or model.") var pick: CheckpointPick = .ema
    @Option(help: "Input safetensors file.") var inputs: String
    @Option(help: "Output safetensors file.") var output: String
    @Flag(help: "Guide all eps channels (standard CFG) instead of the reference's first 3.") var guideAllChannels = false
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    func run() throws {
        if let threads { Threads.set(threads) }
        let names = try DiTEval.run(weights: weights, configFile: config, numHeads: numHeads, pick: pick, inputs: inputs,
                                    output: output, guideAllChannels: guideAllChannels)
        print("wrote \(names.joined(separator: ", ")) to \(output)")
    }
}
