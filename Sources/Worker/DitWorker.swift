import ArgumentParser
import Logging

/// `dit-worker`: the per-machine engine. Every subcommand is a thin shell over
/// library code in `Pipeline`.
@main
struct DitWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dit-worker",
        abstract: "DiT / VAE / Inception worker: evaluation, benchmarks, single-process jobs.",
        subcommands: [Connect.self, Eval.self, Bench.self, Convert.self, Dataset.self, FIDStats.self, Grid.self, Sample.self, Noise.self, Train.self, TrainClassifier.self],
        defaultSubcommand: Connect.self
    )
}

/// `dit-worker eval KIND`: runs one engine on a safetensors file of inputs.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one engine on IN.safetensors and write OUT.safetensors.",
        subcommands: [EvalDiT.self, EvalCrop.self, EvalVAE.self, EvalInception.self, EvalDiffusion.self, EvalSampler.self, EvalTrain.self, EvalClassify.self]
    )
}

/// `dit-worker bench KIND`: prints throughput figures.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput with random weights.",
        subcommands: [BenchGEMM.self, BenchDiT.self, BenchVAE.self, BenchInception.self, BenchTrain.self, BenchSample.self]
    )
}

/// The worker executable's logger (swift-log; `--log-level`, `--log-format`).
let workerLog = Logger(label: "dit.worker")
