import Foundation
import PipelineFiles
import PipelineInception

/// Single-process statistics extraction (`dit-worker fidstats`): images →
/// FID Inception → mergeable pool3 and spatial statistics → a statistics .npz
/// (mu, sigma, mu_s, sigma_s; pytorch-fid and ADM both read it) with its
/// provenance JSON. With `embedImages` the source's uint8 `arr_0` is streamed
/// into the output too, which makes it a complete ADM reference batch.
public struct FIDStatsJob {
    public var weights: InceptionWeightsSpec
    public var mode: InceptionPreprocessing
    public var batch: Int
    public var embedImages: Bool
    public var samplingRecipe: [String: String]?

    public init(weights: InceptionWeightsSpec, mode: InceptionPreprocessing = .pytorchFID, batch: Int = 50,
                embedImages: Bool = false, samplingRecipe: [String: String]? = nil) {
        self.weights = weights; self.mode = mode; self.batch = batch
        self.embedImages = embedImages; self.samplingRecipe = samplingRecipe
    }

    public struct Output {
        public var pool: FeatureStatistics
        public var spatial: FeatureStatistics
        /// Images that could not be read (skipped; counted in the provenance).
        public var failures: [ItemFailure]
        public var provenance: StatisticsProvenance
    }

    /// pytorch-fid's image folder: the files directly in `dir` whose extension is
    /// one of these (lower case, as its `glob("*.ext")`), sorted by path.
    public static let folderExtensions = ["bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"]

    /// pytorch-fid's folder listing, as full paths.
    public static func imageFiles(in dir: String) throws -> [String] {
        try FIDStatsSource.imageFiles(in: dir, recursive: false).map { dir.hasSuffix("/") ? dir + $0 : dir + "/" + $0 }
    }

    /// Statistics of a source's images (decoded to RGB as PIL's `convert("RGB")`, then
    /// x / 255), written to `out` with the provenance beside it. Unreadable images are
    /// skipped and returned in `failures`.
    @discardableResult
    public func run(source: FIDStatsSource, out: String, model loaded: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        try checkEmbedding(source)
        let model = try loaded ?? weights.load()
        let items = try source.items()
        let partial = try FIDStatsAccumulation.run(items: items, range: 0..<items.count, model: model, mode: mode,
                                                   batch: batch, progress: { progress?($0, items.count) })
        return try write(partial, source: source, out: out)
    }

    /// pytorch-fid's folder rules (`run(source: .folder(path: dir, recursive: false))`).
    @discardableResult
    public func run(imagesIn dir: String, out: String, model: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        try run(source: .folder(path: dir, recursive: false), out: out, model: model, progress: progress)
    }

    /// Statistics of an .npz's `arr_0` (uint8 NHWC), written to `out`.
    @discardableResult
    public func run(npz: String, out: String, model: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        try run(source: .npz(path: npz), out: out, model: model, progress: progress)
    }

    /// `--embed-images` copies an .npz source's `arr_0`: other sources have none.
    public func checkEmbedding(_ source: FIDStatsSource) throws {
        if embedImages, !(source.isNPZ) { throw MetricsError.format("--embed-images needs an .npz source (arr_0)") }
    }

    /// Writes merged statistics (`mu`, `sigma`, `mu_s`, `sigma_s`; with `embedImages` the
    /// npz source's `arr_0` first) and the provenance beside them. The distributed job's
    /// finalize step calls this with its merged shards.
    public func write(_ partial: FIDStatsPartial, source: FIDStatsSource, out: String) throws -> Output {
        let (pool, spatial) = (partial.pool, partial.spatial)
        guard pool.count >= 2 else {
            throw MetricsError.tooFewSamples("\(source.path): statistics need at least 2 images, found \(pool.count)")
        }
        var embed: ((NPZWriter) throws -> Void)?
        if embedImages, case let .npz(npz) = source {
            embed = { w in
                let src = try NPZFile(path: npz)
                var rows = try src.rows("arr_0", batch: 256)
                try w.beginArray("arr_0", dtype: .uint8, shape: rows.shape)
                while let b = try rows.next() { try b.data.withUnsafeBytes { try w.append($0) } }
                try w.endArray()
            }
        }
        try StatisticsFile.write(pool: try pool.gaussian(), spatial: try spatial.gaussian(), to: out, images: embed)
        let identity = try weights.weightsIdentity()
        var prov = StatisticsProvenance(
            extractor: weights.extractor, weightsSHA256: identity.sha256, weightsFile: identity.file, preprocessing: mode,
            imageCount: pool.count, source: source.path, samplingRecipe: try samplingRecipe ?? source.samplingRecipe(),
            arrays: (embed != nil ? ["arr_0"] : []) + ["mu", "sigma", "mu_s", "sigma_s"])
        prov.skippedImages = partial.skipped == 0 ? nil : partial.skipped
        try prov.write(besideStatistics: out)
        return Output(pool: pool, spatial: spatial, failures: partial.failures, provenance: prov)
    }
}
