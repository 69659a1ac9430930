import Foundation
import PipelineFiles

/// How the class label of each sample is chosen.
public enum ClassLabelPolicy: Equatable {
    /// Uniformly at random per sample (as DiT's and ADM's samplers), drawn from
    /// the noise source keyed by the sample index.
    case uniform
    /// Exactly N / numClasses of each class (the first N mod numClasses classes
    /// get one more), in an order shuffled by the seed.
    case balanced
    /// Sample i takes the i-th label of a list (a file: one integer per line, or an .npy).
    case list([Int])
    /// Unconditional sampling: every sample takes the null class (label = numClasses) of a
    /// model trained with label dropout.
    case null

    /// `uniform`, `balanced`, `null` (unconditional), or a path to a labels file.
    public init(parsing s: String) throws {
        switch s {
        case "uniform": self = .uniform
        case "balanced": self = .balanced
        case "null", "unconditional": self = .null
        default: self = .list(try ClassLabelPolicy.readFile(s))
        }
    }

    public static func readFile(_ path: String) throws -> [Int] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DiffusionError.labelsFile(path: path, reason: "no such file (expected uniform, balanced or a labels file)")
        }
        if path.hasSuffix(".npy") {
            let a: NPYArray
            do { a = try NPY.read(path) } catch { throw DiffusionError.labelsFile(path: path, reason: "\(error)") }
            guard [NPYDType.int64, .int32, .uint8].contains(a.dtype) else {
                throw DiffusionError.labelsFile(path: path, reason: "dtype \(a.dtype.rawValue) is not an integer type")
            }
            return a.int64s().map { Int($0) }
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw DiffusionError.labelsFile(path: path, reason: "unreadable as UTF-8 text")
        }
        var out: [Int] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let s = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if s.isEmpty { continue }
            guard let v = Int(s) else {
                throw DiffusionError.labelsFile(path: path, reason: "line \(n + 1): \"\(s)\" is not an integer")
            }
            out.append(v)
        }
        return out
    }
}

/// Resolves the label of any global sample index of a run of `total` samples.
public struct ClassLabeler {
    public let policy: ClassLabelPolicy
    public let numClasses: Int
    public let total: Int
    private let noise: NoiseSource
    private let table: [Int]?

    /// `nullClass`: the model has the null label `numClasses` (lists may use it; `.null` needs it).
    public init(policy: ClassLabelPolicy, numClasses: Int, total: Int, noise: NoiseSource, nullClass: Bool = false) throws {
        guard numClasses > 0 else { throw DiffusionError.invalidArgument("the model has no classes") }
        guard total >= 0 else { throw DiffusionError.invalidArgument("negative sample count \(total)") }
        self.policy = policy
        self.numClasses = numClasses
        self.total = total
        self.noise = noise
        switch policy {
        case .uniform:
            table = nil
        case .null:
            guard nullClass else {
                throw DiffusionError.invalidArgument("unconditional sampling needs a model with a null class (class_dropout_prob > 0)")
            }
            table = [Int](repeating: numClasses, count: total)
        case .balanced:
            // Fisher-Yates over [0, 1, ..., K-1, 0, 1, ...]; swap j draws from
            // (seed, j, labelOrder), so the order depends on seed and N only.
            var labels = (0..<total).map { $0 % numClasses }
            if total > 1 {
                for j in stride(from: total - 1, to: 0, by: -1) {
                    let k = try noise.uniformInt(below: j + 1, index: j, purpose: .labelOrder, step: 0)
                    labels.swapAt(j, k)
                }
            }
            table = labels
        case let .list(l):
            guard l.count >= total else {
                throw DiffusionError.invalidArgument("the labels list has \(l.count) labels for \(total) samples")
            }
            let top = nullClass ? numClasses : numClasses - 1
            for (i, y) in l.enumerated() where y < 0 || y > top {
                throw DiffusionError.labelOutOfRange(label: y, index: i, numClasses: top + 1)
            }
            table = l
        }
    }

    public func label(for index: Int) throws -> Int {
        guard index >= 0, index < total else {
            throw DiffusionError.invalidArgument("sample index \(index) outside the run's 0..<\(total)")
        }
        if let t = table { return t[index] }
        return try noise.uniformInt(below: numClasses, index: index, purpose: .classLabel, step: 0)
    }

    public func labels(for indices: [Int]) throws -> [Int] { try indices.map(label(for:)) }
}
