import ArgumentParser
import Foundation
import PipelineTraining

/// `dit-worker dataset shapes`: the built-in procedural data set as PNGs.
struct Dataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write built-in procedural data sets.",
        subcommands: [DatasetShapes.self]
    )
}

struct DatasetShapes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shapes",
        abstract: "Coloured geometric shapes (class = shape) in the ImageFolder layout OUT/<class>/<index>.png."
    )

    @Option(help: "Number of images.") var count = 1000
    @Option(help: "Output folder.") var out: String
    @Option(help: "Seed; image i depends only on (seed, i).") var seed: UInt64 = 0
    @Option(help: "Image side in pixels.") var size = 32

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard size >= 8 else { throw ValidationError("--size must be at least 8") }
    }

    func run() throws {
        let ds = ShapesDataset(seed: seed, size: size)
        try ds.write(count: count, to: out)
        print("wrote \(count) images of \(ShapesDataset.numClasses) classes (\(ShapesDataset.classNames.joined(separator: ", "))) to \(out)")
    }
}
