import Foundation
import PipelineFiles
import PipelineInception

/// Where a statistics run's images come from.
public enum FIDStatsSource: Codable, Equatable {
    /// A folder of images: pytorch-fid's rules (the files directly in it whose
    /// extension is one of `FIDStatsJob.folderExtensions`, sorted by path), or with
    /// `recursive` every such file below it, sorted by relative path.
    case folder(path: String, recursive: Bool)
    /// A sample job's (or `dit-worker sample --vae`'s) output folder: its `NNNNNN.png`
    /// by global sample index; its recipe (`samples_*.json`), when present, goes into
    /// the provenance.
    case sampleOutput(path: String)
    /// An .npz whose `arr_0` holds uint8 (N, H, W, 3) images (an ADM batch).
    case npz(path: String)

    public var path: String {
        switch self {
        case let .folder(p, _), let .sampleOutput(p), let .npz(p): return p
        }
    }

    public var isNPZ: Bool { if case .npz = self { return true } else { return false } }

    /// With its path made absolute against `directory`.
    public func absolute(against directory: String = FileManager.default.currentDirectoryPath) -> FIDStatsSource {
        let d = directory.hasSuffix("/") ? directory : directory + "/"
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : d + p }
        switch self {
        case let .folder(p, r): return .folder(path: abs(p), recursive: r)
        case let .sampleOutput(p): return .sampleOutput(path: abs(p))
        case let .npz(p): return .npz(path: abs(p))
        }
    }

    /// The items to evaluate, in order (their global indices are positions in this list).
    public func items() throws -> FIDStatsItems {
        switch self {
        case let .folder(p, recursive):
            return .files(root: p, paths: try FIDStatsSource.imageFiles(in: p, recursive: recursive))
        case let .sampleOutput(p):
            let pngs = try FIDStatsSource.samplePNGs(in: p)
            if let recipe = try FIDStatsSource.sampleRecipe(in: p), let n = recipe["numSamples"].flatMap({ Int($0) }),
               n != pngs.count {
                throw MetricsError.format("\(p): the sample job's recipe lists \(n) samples, the folder holds \(pngs.count) NNNNNN.png (unfinished job?)")
            }
            return .files(root: p, paths: pngs)
        case let .npz(p):
            let h = try NPZFile(path: p).header("arr_0")
            guard h.dtype == .uint8, h.shape.count == 4, h.shape[3] == 3 else {
                throw InceptionError.badInput("\(p): arr_0 is \(h.dtype.rawValue) \(h.shape), expected uint8 (N, H, W, 3)")
            }
            return .rows(npz: p, count: h.shape[0])
        }
    }

    /// The sampling recipe recorded beside a sample job's outputs (`samples_*.json`,
    /// `{"kind": "sample", "spec": {...}}`), flattened to strings; nil for other sources.
    public func samplingRecipe() throws -> [String: String]? {
        guard case let .sampleOutput(p) = self else { return nil }
        return try FIDStatsSource.sampleRecipe(in: p)
    }

    /// Image files under `dir`, as paths relative to it, sorted (by code point, as Python sorts).
    public static func imageFiles(in dir: String, recursive: Bool) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw MetricsError.format("\(dir): not a directory")
        }
        let isImage = { (n: String) in FIDStatsJob.folderExtensions.contains { n.hasSuffix("." + $0) } }
        var names: [String]
        if recursive {
            guard let e = FileManager.default.enumerator(atPath: dir) else { throw MetricsError.format("\(dir): cannot list") }
            names = []
            while let rel = e.nextObject() as? String {
                let last = (rel as NSString).lastPathComponent
                if last.hasPrefix(".") { if e.fileAttributes?[.type] as? FileAttributeType == .typeDirectory { e.skipDescendants() }; continue }
                if isImage(last), e.fileAttributes?[.type] as? FileAttributeType != .typeDirectory { names.append(rel) }
            }
        } else {
            names = try FileManager.default.contentsOfDirectory(atPath: dir).filter(isImage)
        }
        return names.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    /// `NNNNNN.png` files of a sample output folder, by index.
    static func samplePNGs(in dir: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw MetricsError.format("\(dir): not a directory")
        }
        let pngs = try FileManager.default.contentsOfDirectory(atPath: dir).compactMap { n -> (Int, String)? in
            guard n.hasSuffix(".png"), n.count >= 10, let i = Int(n.dropLast(4)), i >= 0 else { return nil }
            return (i, n)
        }.sorted { $0.0 < $1.0 }
        guard !pngs.isEmpty else { throw MetricsError.format("\(dir): no NNNNNN.png samples (not a sample job's output folder)") }
        return pngs.map(\.1)
    }

    static func sampleRecipe(in dir: String) throws -> [String: String]? {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
            .filter { $0.hasPrefix("samples_") && $0.hasSuffix(".json") }.sorted()
        guard let name = names.first else { return nil }
        struct Recipe: Decodable { var spec: [String: RecipeScalar]? }
        guard let data = FileManager.default.contents(atPath: dir + "/" + name),
              let recipe = try? JSONDecoder().decode(Recipe.self, from: data) else {
            throw MetricsError.format("\(dir)/\(name): not a sample recipe (a JSON object with a spec)")
        }
        var out: [String: String] = [:]
        for (k, v) in recipe.spec ?? [:] { if let s = v.text { out[k] = s } }
        out["recipeFile"] = name
        return out
    }
}

/// A source's items: image files (relative to a root) or rows of an .npz's `arr_0`.
public enum FIDStatsItems: Equatable {
    case files(root: String, paths: [String])
    case rows(npz: String, count: Int)

    public var count: Int {
        switch self {
        case let .files(_, p): return p.count
        case let .rows(_, n): return n
        }
    }
}

/// A recipe value as text (nested values and nulls are left out).
private enum RecipeScalar: Decodable {
    case value(String), none

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .none }
        else if let b = try? c.decode(Bool.self) { self = .value(b ? "true" : "false") }
        else if let i = try? c.decode(Int64.self) { self = .value(String(i)) }
        else if let d = try? c.decode(Double.self) { self = .value(String(d)) }
        else if let s = try? c.decode(String.self) { self = .value(s) }
        else { self = .none }
    }

    var text: String? { if case let .value(s) = self { return s } else { return nil } }
}
