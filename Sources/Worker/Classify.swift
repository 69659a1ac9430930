import ArgumentParser
import Foundation
import PipelineTensor
import PipelineMetrics
import PipelineTraining

/// `dit-worker eval classify`: the shape classifier on a sample job's output (class-conditional
/// accuracy: the share of samples assigned their conditioning label from labels.npy) or on an
/// ImageFolder tree of real images.
struct EvalClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classify",
        abstract: "Shape-classifier accuracy of a sample folder (NNNNNN.png + labels.npy) or an ImageFolder tree.")

    @Option(help: "The classifier (safetensors, `dit-worker train-classifier`).") var classifier = "models/shapes-classifier/classifier.safetensors"
    @Option(help: "A sample job's output folder: NNNNNN.png and labels.npy (the conditioning labels).") var samples: String?
    @Option(help: "An ImageFolder tree (root/<class>/<image>) with the classifier's class folders.") var images: String?
    @Option(help: "Classify only the first N images.") var limit: Int?
    @Option(help: "Threads.") var threads: Int?

    func validate() throws {
        guard (samples == nil) != (images == nil) else { throw ValidationError("give exactly one of --samples and --images") }
    }

    func run() throws {
        if let threads { Threads.set(threads) }
        let model = try ShapeClassifier.load(path: classifier)
        let report: ClassificationReport
        if let samples {
            report = try model.evaluate(samples: samples, limit: limit)
            print(String(format: "class-conditional accuracy: %.2f%% (%d of %d samples show their conditioning class)",
                         100 * report.accuracy, report.correct, report.total))
        } else {
            report = try model.evaluate(imageFolder: images!, limit: limit)
            print(String(format: "accuracy: %.2f%% (%d of %d images)", 100 * report.accuracy, report.correct, report.total))
        }
        print(report.text)
    }
}

/// `dit-worker train-classifier`: fits the shape classifier on the procedural shapes set and
/// reports its accuracy on held-out images of another seed.
struct TrainClassifier: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-classifier",
        abstract: "Fit the shape classifier (logistic regression on shape features) on `dataset shapes` images; writes --out.")

    @Option(help: "Training images.") var count = 8000
    @Option(help: "Seed of the training images (the DiT trains on seed 0, FID references use seed 1).") var seed: UInt64 = 2
    @Option(help: "Held-out images for the reported accuracy.") var testCount = 2000
    @Option(help: "Seed of the held-out images.") var testSeed: UInt64 = 3
    @Option(help: "Image side in pixels.") var size = 32
    @Option(help: "Optimisation steps (full-batch Adam).") var iterations = 3000
    @Option(help: "Output safetensors file.") var out: String
    @Option(help: "Threads.") var threads: Int?

    func validate() throws {
        guard count >= 8, testCount > 0, size >= 8, iterations > 0 else {
            throw ValidationError("need --count >= 8, --test-count > 0, --size >= 8 and --iterations > 0")
        }
    }

    static func features(_ ds: ShapesDataset, count: Int) -> [[Double]] {
        var out = [[Double]](repeating: [], count: count)
        out.withUnsafeMutableBufferPointer { buf in
            let p = buf.baseAddress!
            parallelFor(count, grain: 32) { s, e in
                for i in s..<e { p[i] = ShapeFeatures.of(ds.image(i)) }
            }
        }
        return out
    }

    func run() throws {
        if let threads { Threads.set(threads) }
        let train = ShapesDataset(seed: seed, size: size), test = ShapesDataset(seed: testSeed, size: size)
        let classifier = try ShapeClassifier.train(features: Self.features(train, count: count),
                                                   labels: (0..<count).map(train.label(of:)),
                                                   classes: ShapesDataset.classNames, iterations: iterations)
        var report = ClassificationReport(classes: ShapesDataset.classNames)
        for (i, f) in Self.features(test, count: testCount).enumerated() {
            report.add(label: test.label(of: i), predicted: classifier.predict(features: f))
        }
        try classifier.write(to: out)
        print("wrote \(out): trained on \(count) images (seed \(seed)); held-out \(testCount) images (seed \(testSeed)):")
        print(report.text)
    }
}
