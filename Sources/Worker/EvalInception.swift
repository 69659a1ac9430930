import ArgumentParser
import Foundation
import CLIOptions
import PipelineTensor
import PipelineInception


struct EvalInception: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inception",
        abstract: "FID Inception-v3: for each imageK (N,3,H,W in [0,1]) write pool3_K and logits_K.")

    @Option(help: "pytorch-fid weights (.pth or .safetensors).") var weights: String
    @Option(help: "Input safetensors with image0, image1, ...") var inputs: String
    @Option(help: "Output safetensors.") var output: String
    @Option(help: "Preprocessing: pytorch-fid (F.interpolate) or tf1-adm (TF1 ResizeBilinear).") var mode: InceptionPreprocessing = .pytorchFID
    @Option var batch = 16
    @Option var threads = 2
    @Flag(help: "im2col + sgemm for every convolution instead of Winograd (differences ~1e-7 relative).") var noFastConv = false

    func run() throws {
        Threads.set(threads)
        let model = try FIDInceptionV3(path: weights, options: InceptionOptions(fastConvolutions: !noFastConv))
        let keys = try InceptionEval.run(model: model, inputs: inputs, output: output, mode: mode, batch: batch)
        print("wrote \(keys.joined(separator: ", ")) to \(output)")
    }
}
