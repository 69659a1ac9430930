import Foundation
import PipelineFiles
import PipelineImaging
import PipelineInception

/// Mergeable statistics of a set of images (a whole run or one shard): the float64
/// pool3 and spatial (sFID) accumulators, and the images that could not be read.
public struct FIDStatsPartial: Equatable {
    public var pool = FeatureStatistics(dimension: 2048)
    public var spatial = FeatureStatistics(dimension: 17 * 17 * FIDInceptionV3.spatialChannels)
    /// The unreadable images themselves (path, reason), where known: a partial read
    /// back from its file has only their number.
    public var failures: [ItemFailure] = []
    /// How many images were left out as unreadable.
    public var skipped = 0

    public init() {}

    public mutating func merge(_ other: FIDStatsPartial) throws {
        try pool.merge(other.pool)
        try spatial.merge(other.spatial)
        failures += other.failures
        skipped += other.skipped
    }

    /// The shard file: `skipped`, `pool_count`, `pool_mean`, `pool_m2_upper`,
    /// `spatial_count`, `spatial_mean`, `spatial_m2_upper` (counts int64, the rest
    /// float64, exactly; `*_m2_upper` is the symmetric M2's upper triangle row by row,
    /// NumPy's `m2[np.triu_indices(d)]`: half the bytes of the full matrix, 33 MB),
    /// written atomically (temporary file, fsync, rename). Failures go to the ledger.
    public func write(to path: String) throws {
        var arrays: [(String, NPYArray)] = [("skipped", NPYArray(int64: [Int64(skipped)], shape: [1]))]
        for (name, s) in [("pool", pool), ("spatial", spatial)] {
            let d = s.dimension
            var upper = [Double]()
            upper.reserveCapacity(d * (d + 1) / 2)
            s.m2.withUnsafeBufferPointer { m in for i in 0..<d { upper.append(contentsOf: m[(i * d + i)..<((i + 1) * d)]) } }
            arrays.append(("\(name)_count", NPYArray(int64: [Int64(s.count)], shape: [1])))
            arrays.append(("\(name)_mean", NPYArray(float64: s.mean, shape: [d])))
            arrays.append(("\(name)_m2_upper", NPYArray(float64: upper, shape: [upper.count])))
        }
        try NPZWriter.write(arrays, to: path)
    }

    public static func read(_ path: String) throws -> FIDStatsPartial {
        let z = try NPZFile(path: path)
        func stats(_ name: String, dimension d: Int) throws -> FeatureStatistics {
            let c = try z.array(name + "_count"), m = try z.array(name + "_mean"), u = try z.array(name + "_m2_upper")
            guard c.count == 1, m.shape == [d], u.shape == [d * (d + 1) / 2] else {
                throw MetricsError.format("\(path): not partial FID statistics (\(name): count \(c.shape), mean \(m.shape), m2_upper \(u.shape))")
            }
            let upper = try u.doubles()
            var m2 = [Double](repeating: 0, count: d * d)
            var k = 0
            for i in 0..<d {
                for j in i..<d { m2[i * d + j] = upper[k]; m2[j * d + i] = upper[k]; k += 1 }
            }
            return try FeatureStatistics(dimension: d, count: Int(c.int64s()[0]), mean: m.doubles(), m2: m2)
        }
        var p = FIDStatsPartial()
        p.pool = try stats("pool", dimension: p.pool.dimension)
        p.spatial = try stats("spatial", dimension: p.spatial.dimension)
        let skipped = try z.array("skipped").int64s()
        guard skipped.count == 1, skipped[0] >= 0 else { throw MetricsError.format("\(path): bad 'skipped' \(skipped)") }
        p.skipped = Int(skipped[0])
        return p
    }
}

/// The one extraction loop behind `dit-worker fidstats` and the `fidstats` job's shards,
/// so both give the same numbers: items `range` of a source, in batches of `batch`
/// consecutive items starting at `range.lowerBound` (an image that cannot be read drops
/// out of its batch and is reported; images of different sizes in one batch are run
/// as separate sub-batches, in order of first appearance).
public enum FIDStatsAccumulation {
    public static func run(items: FIDStatsItems, range: Range<Int>, model: FIDInceptionV3, mode: InceptionPreprocessing,
                           batch: Int, checkpoint: () throws -> Void = {},
                           progress: ((Int) -> Void)? = nil) throws -> FIDStatsPartial {
        guard range.lowerBound >= 0, range.upperBound <= items.count else {
            throw MetricsError.shape("items \(range) of a source with \(items.count)")
        }
        let step = max(batch, 1)
        var acc = FIDStatsPartial()
        func add(_ f: InceptionFeatures) throws {
            try acc.pool.add(f.pool3)
            try acc.spatial.add(f.spatial)
        }
        switch items {
        case let .files(root, paths):
            for start in stride(from: range.lowerBound, to: range.upperBound, by: step) {
                try checkpoint()
                let end = min(start + step, range.upperBound)
                var bySize: [[Int]: [ImageRGB8]] = [:]
                var order: [[Int]] = []
                for i in start..<end {
                    do {
                        let img = try ImageDecoder.decode(path: root + "/" + paths[i])
                        if bySize[img.shape] == nil { order.append(img.shape) }
                        bySize[img.shape, default: []].append(img)
                    } catch {
                        acc.failures.append(ItemFailure(item: i, path: paths[i], reason: "\(error)"))
                        acc.skipped += 1
                    }
                }
                for shape in order {
                    guard let imgs = bySize[shape] else { continue }
                    let nhwc = NPYArray(uint8: imgs.flatMap(\.pixels), shape: [imgs.count] + shape)
                    try add(try model.features(try InceptionEval.imagesFromNHWC(nhwc), mode: mode))
                }
                progress?(end - range.lowerBound)
            }
        case let .rows(npz, _):
            var rows = try NPZFile(path: npz).rows("arr_0", batch: step)
            try rows.skip(rows: range.lowerBound)
            var done = 0
            while done < range.count {
                try checkpoint()
                guard let b = try rows.next(maxRows: min(step, range.count - done)) else {
                    throw MetricsError.format("\(npz): arr_0 ends at row \(range.lowerBound + done), expected \(range.upperBound)")
                }
                try add(try model.features(try InceptionEval.imagesFromNHWC(b), mode: mode))
                done += b.shape[0]
                progress?(done)
            }
        }
        return acc
    }
}
