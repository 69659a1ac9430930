import ArgumentParser
import Foundation
import PipelineTensor
import PipelineFiles
import PipelineDiT

/// The flags of the eval commands that run a DiT on a safetensors file of inputs.
struct EvalDiTOptions: ParsableArguments {
    @Option(help: "DiT weights: a .safetensors or .pt/.pth file, or a diffusers folder.") var weights: String
    @Option(help: "A DiT config.json; default: beside the weights, else inferred.") var config: String?
    @Option(help: "Number of attention heads, for widths that match no preset.") var numHeads: Int?
    @Option(help: "Input safetensors file.") var inputs: String
    @Option(help: "Output safetensors file.") var output: String
    @Option(help: "Threads for BLAS and elementwise work.") var threads: Int?

    /// Sets the threads, loads the model and the inputs, runs `body`, writes its output.
    func run(_ body: (DiT, SafeTensorsFile) throws -> SafeTensorsWriter) throws {
        if let threads { Threads.set(threads) }
        let model = try DiT.load(path: weights, configFile: config, numHeads: numHeads)
        let out = try body(model, try SafeTensorsFile(path: inputs))
        try out.write(to: output)
        print("wrote \(out.names.joined(separator: ", ")) to \(output)")
    }
}
