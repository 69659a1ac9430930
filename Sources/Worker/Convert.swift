import ArgumentParser
import CLIOptions
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

    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        let bar = ProgressReporter("converting", total: 1, unit: "MB")
        let s = try WeightsConversion.toSafeTensors(input: input, output: output, pick: pick, upcastToFloat32: upcastF32) {
            bar.total = max($1 >> 20, 1)
            bar.update($0 == $1 ? bar.total : $0 >> 20)
        }
        bar.finish()
        var line = "\(output): \(s.tensors) tensors, \(s.bytes) bytes"
        if let e = s.servedEntry { line += ", from checkpoint entry '\(e)'" }
        if !s.skippedEntries.isEmpty { line += "; skipped: \(s.skippedEntries.joined(separator: ", "))" }
        print(line)
    }
}

extension CheckpointPick: ExpressibleByArgument {}
