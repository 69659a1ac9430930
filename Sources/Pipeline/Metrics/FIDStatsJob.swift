import Foundation

/// Single-process statistics extraction (`dit-worker fidstats`): images →
/// FID Inception → mergeable pool3 and spatial statistics → a statistics .npz
/// (mu, sigma, mu_s, sigma_s; pytorch-fid and ADM both read it) with its
/// provenance JSON. With `embedImages` the source's uint8 `arr_0` is streamed
/// into the output too, which makes it a complete ADM reference batch.
public struct FIDStatsJob {
    public var weightsPath: String
    public var mode: InceptionPreprocessing
    public var batch: Int
    public var embedImages: Bool
    public var samplingRecipe: [String: String]?

    public init(weightsPath: String, mode: InceptionPreprocessing = .pytorchFID, batch: Int = 50,
                embedImages: Bool = false, samplingRecipe: [String: String]? = nil) {
        self.weightsPath = weightsPath; self.mode = mode; self.batch = batch
        self.embedImages = embedImages; self.samplingRecipe = samplingRecipe
    }

    public struct Output {
        public var pool: FeatureStatistics
        public var spatial: FeatureStatistics
        public var provenance: StatisticsProvenance
    }

    /// Statistics of an .npz's `arr_0` (uint8 NHWC), written to `out`.
    @discardableResult
    public func run(npz: String, out: String, model loaded: FIDInceptionV3? = nil,
                    progress: ((Int, Int) -> Void)? = nil) throws -> Output {
        let model = try loaded ?? FIDInceptionV3(path: weightsPath)
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
        guard pool.count >= 2 else { throw MetricsError.tooFewSamples("\(npz): statistics need at least 2 images, arr_0 has \(pool.count)") }
        let embed: ((NPZWriter) throws -> Void)? = embedImages ? { w in
            let src = try NPZFile(path: npz)
            var rows = try src.rows("arr_0", batch: 256)
            try w.beginArray("arr_0", dtype: .uint8, shape: rows.shape)
            while let b = try rows.next() { try b.data.withUnsafeBytes { try w.append($0) } }
            try w.endArray()
        } : nil
        try StatisticsFile.write(pool: try pool.gaussian(), spatial: try spatial.gaussian(), to: out, images: embed)
        let prov = StatisticsProvenance(
            extractor: "pytorch-fid FIDInceptionV3 (pt_inception-2015-12-05): pool3 2048 -> mu/sigma; mixed_6/conv[..., :7] 2023 -> mu_s/sigma_s",
            weightsSHA256: try FileSHA256.hex(path: weightsPath), weightsFile: weightsPath, preprocessing: mode,
            imageCount: pool.count, source: npz, samplingRecipe: samplingRecipe,
            arrays: (embedImages ? ["arr_0"] : []) + ["mu", "sigma", "mu_s", "sigma_s"])
        try prov.write(besideStatistics: out)
        return Output(pool: pool, spatial: spatial, provenance: prov)
    }
}
