import ArgumentParser
import Foundation
import PipelineImaging

/// `dit-worker grid`: a sample sheet PNG from a folder of NNNNNN.png samples.
struct Grid: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid",
        abstract: "Lay out the first N samples (NNNNNN.png) of a folder as one grid PNG (torchvision make_grid).")

    @Option(help: "Folder of NNNNNN.png samples (a sample job's output).") var images: String
    @Option(help: "Number of samples on the sheet.") var count = 16
    @Option(help: "Images per row.") var nrow = 4
    @Option(help: "Pixels between images.") var padding = 2
    @Option(help: "Integer enlargement (nearest neighbour).") var scale = 1
    @Option(help: "Output PNG.") var out: String

    func run() throws {
        let sheet = try SampleSheet.make(folder: images, count: count, nrow: nrow, padding: padding, scale: scale)
        try PNGWriter.write(sheet, to: out)
        print("wrote \(out) (\(sheet.width)x\(sheet.height), \(count) samples)")
    }
}
