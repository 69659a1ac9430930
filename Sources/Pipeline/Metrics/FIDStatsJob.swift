import Foundation

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
        public var provenance: StatisticsProvenance
    }

    /// pytorch-fid's image folder: the files directly in `dir` whose extension is
    /// one of these (lower case, as its `glob("*.ext")`), sorted by path.
    public static let folderExtensions = ["bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"]

    public static func imageFiles(in dir: String) throws -> [String] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw MetricsError.format("\(dir): not a directory")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        return names.filter { n in folderExtensions.contains { n.hasSuffix("." + $0) } }
            .map { dir.hasSuffix("/") ? dir + $0 : dir + "/" + $0 }.sorted()
    }

    /// Statistics of the images in a folder (decoded to RGB as PIL's
    /// `convert("RGB")`, then x / 255), written to `out`. Images of different
    /// sizes are fine: each batch is split by size, and statistics merge exactly.
    @discardableResult
    public func run(imagesIn dir: String, out: String, model loaded: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        guard !embedImages else { throw MetricsError.format("--embed-images needs an .npz source (arr_0)") }
        let model = try loaded ?? weights.load()
        let files = try FIDStatsJob.imageFiles(in: dir)
        var pool = FeatureStatistics(dimension: 2048)
        var spatial = FeatureStatistics(dimension: 17 * 17 * FIDInceptionV3.spatialChannels)
        var start = 0
        while start < files.count {
            let chunk = files[start..<min(files.count, start + max(batch, 1))]
            var bySize: [[Int]: [ImageRGB8]] = [:]
            var order: [[Int]] = []
            for f in chunk {
                let img = try ImageDecoder.decode(path: f)
                if bySize[img.shape] == nil { order.append(img.shape) }
                bySize[img.shape, default: []].append(img)
            }
            for shape in order {
                let imgs = bySize[shape]!
                let px = imgs.flatMap(\.pixels)
                let batchArray = NPYArray(uint8: px, shape: [imgs.count] + shape)
                let f = try model.features(try InceptionEval.imagesFromNHWC(batchArray), mode: mode)
                try pool.add(f.pool3)
                try spatial.add(f.spatial)
            }
            start += chunk.count
            progress?(start, files.count)
        }
        return try finish(pool: pool, spatial: spatial, source: dir, out: out, images: nil)
    }

    /// Statistics of an .npz's `arr_0` (uint8 NHWC), written to `out`.
    @discardableResult
    public func run(npz: String, out: String, model loaded: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        let model = try loaded ?? weights.load()
        let total = try NPZFile(path: npz).header("arr_0").shape.first ?? 0
        var pool = FeatureStatistics(dimension: 2048)
        var spatial = FeatureStatistics(dimension: 17 * 17 * FIDInceptionV3.spatialChannels)
        var done = 0
        try InceptionEval.forEachBatch(model: model, npz: npz, mode: mode, batch: batch) { f, _ in
            try pool.add(f.pool3)
            try spatial.add(f.spatial)
            done += f.pool3.shape[0]
            progress?(done, total)
        }
        let embed: ((NPZWriter) throws -> Void)? = embedImages ? { w in
            let src = try NPZFile(path: npz)
            var rows = try src.rows("arr_0", batch: 256)
            try w.beginArray("arr_0", dtype: .uint8, shape: rows.shape)
            while let b = try rows.next() { try b.data.withUnsafeBytes { try w.append($0) } }
            try w.endArray()
        } : nil
        return try finish(pool: pool, spatial: spatial, source: npz, out: out, images: embed)
    }

    func finish(pool: FeatureStatistics, spatial: FeatureStatistics, source: String, out: String,
                images embed: ((NPZWriter) throws -> Void)?) throws -> Output {
        guard pool.count >= 2 else { throw MetricsError.tooFewSamples("\(source): statistics need at least 2 images, found \(pool.count)") }
        try StatisticsFile.write(pool: try pool.gaussian(), spatial: try spatial.gaussian(), to: out, images: embed)
        let identity = try weights.weightsIdentity()
        let prov = StatisticsProvenance(
            extractor: weights.extractor, weightsSHA256: identity.sha256, weightsFile: identity.file, preprocessing: mode,
            imageCount: pool.count, source: source, samplingRecipe: samplingRecipe,
            arrays: (embed != nil ? ["arr_0"] : []) + ["mu", "sigma", "mu_s", "sigma_s"])
        try prov.write(besideStatistics: out)
        return Output(pool: pool, spatial: spatial, provenance: prov)
    }
}
