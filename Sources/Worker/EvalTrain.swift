import ArgumentParser
import Foundation
import PipelineTensor
import PipelineTraining

/// `dit-worker eval train`: one training step (loss, gradients, one AdamW update).
struct EvalTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "One DiT training step: reads x0, t, noise, y (lr, weight_decay, betas, eps in metadata), writes loss, grad.<param>, after.<param>.")

    @Option(help: "A .safetensors or .pt/.pth file (reference key layout).") var weights: String
    @Option(help: "A config.json; default: config.json beside the weights, else inferred.") var config: String?
    @Option(help: "Input safetensors file.") var inputs: String
    @Option(help: "Output safetensors file.") var output: String
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    func run() throws {
        if let threads { Threads.set(threads) }
        let names = try TrainStepEval.run(weights: weights, configFile: config, inputs: inputs, output: output)
        print("wrote \(names.count) tensors to \(output)")
    }
}
