import Foundation
import PipelineTensor
import PipelineFiles
import PipelineImaging

/// A shape classifier for 1-object images (the procedural shapes set): multinomial logistic
/// regression on the standardised `ShapeFeatures`, trained by full-batch Adam on the
/// cross-entropy. Used to measure how often a class-conditional generator's samples show
/// their conditioning class (class-conditional accuracy).
///
/// File (safetensors): `mean`, `std` (F), `weight` (K, F), `bias` (K), float32; metadata
/// `classes` (comma-separated, label order), `features` (the feature set's name and count).
public struct ShapeClassifier {
    public static let featureSet = "shape-features-v1/\(ShapeFeatures.count)"
    public let classes: [String]
    let mean: [Double], std: [Double]
    let weight: [Double], bias: [Double]  // weight row-major (K, F)
    var numFeatures: Int { mean.count }

    /// Per-class scores (logits) of one feature vector.
    public func logits(_ f: [Double]) -> [Double] {
        let nf = numFeatures
        return (0..<classes.count).map { k in
            var s = bias[k]
            for j in 0..<nf { s += weight[k * nf + j] * (f[j] - mean[j]) / std[j] }
            return s
        }
    }

    public func predict(_ image: ImageRGB8) -> Int { predict(features: ShapeFeatures.of(image)) }

    public func predict(features f: [Double]) -> Int {
        let z = logits(f)
        return z.indices.max { z[$0] < z[$1] }!
    }

    /// Trains on feature vectors with labels in 0..<classes.count (deterministic: no sampling).
    public static func train(features: [[Double]], labels: [Int], classes: [String],
                             iterations: Int = 3000, learningRate: Double = 0.05, l2: Double = 1e-4) throws -> ShapeClassifier {
        let n = features.count, k = classes.count, nf = ShapeFeatures.count
        guard n > 0, labels.count == n, features.allSatisfy({ $0.count == nf }) else {
            throw MetricsError.shape("classifier training: \(n) feature vectors of \(nf) values and \(labels.count) labels needed")
        }
        guard k >= 2, labels.allSatisfy({ $0 >= 0 && $0 < k }) else {
            throw MetricsError.shape("classifier training: labels must lie in 0..<\(k)")
        }
        var mean = [Double](repeating: 0, count: nf), std = mean
        for f in features { for j in 0..<nf { mean[j] += f[j] } }
        for j in 0..<nf { mean[j] /= Double(n) }
        for f in features { for j in 0..<nf { std[j] += (f[j] - mean[j]) * (f[j] - mean[j]) } }
        for j in 0..<nf { std[j] = max((std[j] / Double(n)).squareRoot(), 1e-12) }
        let x = features.map { f in (0..<nf).map { (f[$0] - mean[$0]) / std[$0] } }
        var w = [Double](repeating: 0, count: k * nf), b = [Double](repeating: 0, count: k)
        var mw = w, vw = w, mb = b, vb = b
        let beta1 = 0.9, beta2 = 0.999, eps = 1e-8
        for it in 1...max(1, iterations) {
            var gw = [Double](repeating: 0, count: k * nf), gb = [Double](repeating: 0, count: k)
            for i in 0..<n {
                var z = b
                for c in 0..<k { for j in 0..<nf { z[c] += w[c * nf + j] * x[i][j] } }
                let zmax = z.max()!
                var p = z.map { Foundation.exp($0 - zmax) }
                let s = p.reduce(0, +)
                for c in 0..<k { p[c] /= s }
                p[labels[i]] -= 1
                for c in 0..<k {
                    gb[c] += p[c]
                    for j in 0..<nf { gw[c * nf + j] += p[c] * x[i][j] }
                }
            }
            let bc1 = 1 - Foundation.pow(beta1, Double(it)), bc2 = 1 - Foundation.pow(beta2, Double(it))
            for q in 0..<(k * nf) {
                let g = gw[q] / Double(n) + l2 * w[q]
                mw[q] = beta1 * mw[q] + (1 - beta1) * g; vw[q] = beta2 * vw[q] + (1 - beta2) * g * g
                w[q] -= learningRate * (mw[q] / bc1) / ((vw[q] / bc2).squareRoot() + eps)
            }
            for c in 0..<k {
                let g = gb[c] / Double(n)
                mb[c] = beta1 * mb[c] + (1 - beta1) * g; vb[c] = beta2 * vb[c] + (1 - beta2) * g * g
                b[c] -= learningRate * (mb[c] / bc1) / ((vb[c] / bc2).squareRoot() + eps)
            }
        }
        // Stored as float32: round now so that the trained and the reloaded model agree.
        func f32(_ a: [Double]) -> [Double] { a.map { Double(Float($0)) } }
        return ShapeClassifier(classes: classes, mean: f32(mean), std: f32(std), weight: f32(w), bias: f32(b))
    }

    public func write(to path: String) throws {
        let nf = numFeatures, k = classes.count
        var wr = SafeTensorsWriter(metadata: ["classes": classes.joined(separator: ","), "features": Self.featureSet,
                                              "format": "dit-shape-classifier"])
        wr.add("mean", Tensor(shape: [nf], values: mean.map { Float($0) }))
        wr.add("std", Tensor(shape: [nf], values: std.map { Float($0) }))
        wr.add("weight", Tensor(shape: [k, nf], values: weight.map { Float($0) }))
        wr.add("bias", Tensor(shape: [k], values: bias.map { Float($0) }))
        try wr.write(to: path)
    }

    public static func load(path: String) throws -> ShapeClassifier {
        let f = try SafeTensorsFile(path: path)
        guard f.metadata["features"] == featureSet else {
            throw MetricsError.format("\(path): a shape classifier for features '\(featureSet)' is needed, the file says '\(f.metadata["features"] ?? "none")'")
        }
        let classes = (f.metadata["classes"] ?? "").split(separator: ",").map(String.init)
        guard classes.count >= 2 else { throw MetricsError.format("\(path): metadata 'classes' names fewer than two classes") }
        let nf = ShapeFeatures.count, k = classes.count
        func read(_ key: String, _ shape: [Int]) throws -> [Double] {
            let t = try f.tensor(key, shape: shape)
            return (0..<t.count).map { Double(t.data[$0]) }
        }
        let std = try read("std", [nf])
        guard std.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw MetricsError.format("\(path): 'std' must be positive") }
        return ShapeClassifier(classes: classes, mean: try read("mean", [nf]), std: std,
                               weight: try read("weight", [k, nf]), bias: try read("bias", [k]))
    }
}

/// The result of classifying labelled images: accuracy and the confusion matrix.
public struct ClassificationReport {
    public let classes: [String]
    /// confusion[true label][predicted]
    public private(set) var confusion: [[Int]]

    public init(classes: [String]) {
        self.classes = classes
        confusion = Array(repeating: Array(repeating: 0, count: classes.count), count: classes.count)
    }

    public mutating func add(label: Int, predicted: Int) { confusion[label][predicted] += 1 }

    public var total: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }
    public var correct: Int { classes.indices.reduce(0) { $0 + confusion[$1][$1] } }
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    public var text: String {
        var lines = [String(format: "accuracy %.2f%% (%d of %d)", 100 * accuracy, correct, total)]
        lines.append("confusion (rows: label, columns: predicted " + classes.joined(separator: " ") + ")")
        for (i, row) in confusion.enumerated() {
            lines.append(classes[i].padding(toLength: 10, withPad: " ", startingAt: 0) + row.map { String(format: "%6d", $0) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}

extension ShapeClassifier {
    /// Classifies a sample job's output folder (`NNNNNN.png` + `labels.npy`, the conditioning
    /// labels): the share of samples assigned their conditioning label.
    public func evaluate(samples dir: String, limit: Int? = nil) throws -> ClassificationReport {
        let pngs = try FIDStatsSource.samplePNGs(in: dir)
        let labelsPath = dir + "/labels.npy"
        guard FileManager.default.fileExists(atPath: labelsPath) else {
            throw MetricsError.format("\(dir): no labels.npy (the sample job's conditioning labels)")
        }
        let labels = try NPY.read(labelsPath).int64s()
        let n = min(pngs.count, limit ?? pngs.count)
        guard labels.count >= n else { throw MetricsError.format("\(labelsPath): \(labels.count) labels for \(n) samples") }
        return try evaluate((0..<n).map { (dir + "/" + pngs[$0], Int(labels[$0])) }, source: labelsPath)
    }

    /// Classifies an ImageFolder tree whose class folders are this classifier's classes.
    public func evaluate(imageFolder root: String, limit: Int? = nil) throws -> ClassificationReport {
        let folder = try ImageFolder(root: root)
        guard folder.classes == classes else {
            throw MetricsError.format("\(root): class folders \(folder.classes) are not the classifier's classes \(classes)")
        }
        let items = folder.items.prefix(limit ?? folder.items.count)
        return try evaluate(items.map { ($0.path, $0.label) }, source: root)
    }

    func evaluate(_ items: [(path: String, label: Int)], source: String) throws -> ClassificationReport {
        var report = ClassificationReport(classes: classes)
        var predicted = [Int](repeating: 0, count: items.count)
        for (i, item) in items.enumerated() where item.label < 0 || item.label >= classes.count {
            throw MetricsError.format("\(source): label \(item.label) of item \(i) is outside 0..<\(classes.count)")
        }
        // Decoding and features in parallel; each image's prediction is independent.
        var failure: Error?
        let lock = NSLock()
        predicted.withUnsafeMutableBufferPointer { out in
            let p = out.baseAddress!
            parallelFor(items.count, grain: 16) { s, e in
                for i in s..<e {
                    do { p[i] = predict(try ImageDecoder.decode(path: items[i].path)) } catch {
                        lock.lock(); if failure == nil { failure = error }; lock.unlock()
                    }
                }
            }
        }
        if let failure { throw failure }
        for (i, item) in items.enumerated() { report.add(label: item.label, predicted: predicted[i]) }
        return report
    }
}
