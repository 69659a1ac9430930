import ArgumentParser
import Foundation
import PipelineWeights

/// `dit-worker convert IN OUT.safetensors [--pick ema|model] [--upcast-f32]`
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a weights file (PyTorch .pt/.pth checkpoint or safetensors) as safetensors.",
        discussion: "Dtypes are kept as stored unless --upcast-f32 is given. For a DiT train.py checkpoint the EMA weights are written unless --pick model."
    )

    @Argument(help: "Input weights: a torch.save zip checkpoint or a safetensors file.")
    var input: String
    @Argument(help: "Output .safetensors path (written atomically).")
    var output: String
    @Option(help: "Which weights of a train.py checkpoint to write: ema or model.")
    var pick: CheckpointPick = .ema
    @Flag(name: .customLong("upcast-f32"), help: "Write floating-point tensors as F32 instead of their stored dtype.")
    var upcastF32 = false

    func run() throws {
        let s = try WeightsConversion.toSafeTensors(input: input, output: output, pick: pick, upcastToFloat32: upcastF32)
        var line = "\(output): \(s.tensors) tensors, \(s.bytes) bytes"
        if let e = s.servedEntry { line += ", from checkpoint entry '\(e)'" }
        if !s.skippedEntries.isEmpty { line += "; skipped: \(s.skippedEntries.joined(separator: ", "))" }
        print(line)
    }
}

extension CheckpointPick: ExpressibleByArgument {}
