import ArgumentParser
import Foundation
import Logging
import CLIOptions
import PipelineTensor
import PipelineInception
import PipelineMetrics


struct FIDCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fid",
        abstract: "FID between two statistics files (pytorch-fid or ADM); with ADM batches and --inception also sFID, IS, precision, recall.")

    @Argument(help: "Reference statistics / ADM reference batch (.npz).") var a: String
    @Argument(help: "Sample statistics / ADM sample batch (.npz).") var b: String
    @Option(help: "Inception weights (or random[:SEED], the proxy extractor), to evaluate images (arr_0) for IS and precision/recall.")
    var inception: String?
    @Option(help: "Preprocessing for images: tf1-adm (ADM's graph) or pytorch-fid.") var mode: InceptionPreprocessing = .tf1ADM
    @Option var threads = 2
    @Flag(help: "Also KID (100 subsets of up to 1000 vectors; needs images on both sides).") var kid = false
    @Flag var json = false
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        Threads.set(threads)
        for w in StatisticsProvenance.comparisonWarnings(a, b) { coordinatorLog.warning("\(w)") }
        let model = try inception.map { try InceptionWeightsSpec(parsing: $0).load() }
        let r = try FIDComparison.compare(reference: a, samples: b, model: model, mode: mode, kid: kid)
        print(json ? try r.json() : r.text)
    }
}
