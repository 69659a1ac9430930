import Foundation

/// Per-timestep-bucket sums of the model's training losses: `buckets` equal buckets over
/// [0, numTimesteps) (bucket of t = ⌊t · buckets / numTimesteps⌋). Sums are float64 and
/// merged in shard order, so the report is the same whatever the sharding's schedule or
/// the number of workers.
public struct LossBuckets: Codable, Equatable {
    public var numTimesteps: Int
    public var count: [Int]
    public var mse: [Double]
    /// Absent (nil) for a model without a learned variance (no vb term).
    public var vb: [Double]?
    public var loss: [Double]

    public init(numTimesteps: Int, buckets: Int, hasVB: Bool) throws {
        guard numTimesteps > 0, buckets > 0, buckets <= numTimesteps else {
            throw JobError.badSpec(kind: "noise", reason: "buckets must be in 1...\(numTimesteps), got \(buckets)")
        }
        self.numTimesteps = numTimesteps
        count = Array(repeating: 0, count: buckets)
        mse = Array(repeating: 0, count: buckets)
        vb = hasVB ? Array(repeating: 0, count: buckets) : nil
        loss = Array(repeating: 0, count: buckets)
    }

    public var buckets: Int { count.count }

    public func bucket(of t: Int) -> Int { t * buckets / numTimesteps }

    /// Timesteps of bucket b: [start, end).
    public func range(ofBucket b: Int) -> Range<Int> {
        // The smallest t with ⌊t·B/T⌋ = b is ⌈b·T/B⌉.
        let start = (b * numTimesteps + buckets - 1) / buckets
        let end = ((b + 1) * numTimesteps + buckets - 1) / buckets
        return start..<end
    }

    public mutating func add(t: Int, mse m: Float, vb v: Float?, loss l: Float) {
        let b = bucket(of: t)
        count[b] += 1
        mse[b] += Double(m)
        if vb != nil, let v { vb![b] += Double(v) }
        loss[b] += Double(l)
    }

    public mutating func merge(_ o: LossBuckets) throws {
        guard o.numTimesteps == numTimesteps, o.buckets == buckets, (o.vb == nil) == (vb == nil) else {
            throw JobError.verification(path: "losses", reason: "partial sums of different bucketings cannot be merged")
        }
        for b in 0..<buckets {
            count[b] += o.count[b]; mse[b] += o.mse[b]; loss[b] += o.loss[b]
            if let ov = o.vb { vb![b] += ov[b] }
        }
    }

    /// The report's rows: means per bucket and overall.
    public func report() -> NoiseLossReport {
        func row(_ r: Range<Int>, _ n: Int, _ m: Double, _ v: Double?, _ l: Double) -> NoiseLossReport.Row {
            let d = Double(max(n, 1))
            return .init(tStart: r.lowerBound, tEnd: r.upperBound, count: n, mse: n > 0 ? m / d : nil,
                         vb: n > 0 ? v.map { $0 / d } : nil, loss: n > 0 ? l / d : nil)
        }
        let rows = (0..<buckets).map { b in row(range(ofBucket: b), count[b], mse[b], vb?[b], loss[b]) }
        let all = row(0..<numTimesteps, count.reduce(0, +), mse.reduce(0, +), vb?.reduce(0, +), loss.reduce(0, +))
        return NoiseLossReport(numTimesteps: numTimesteps, buckets: rows, overall: all)
    }
}

/// The `noise` job's loss report (`losses.json`): mean mse, vb and loss (mse + vb) per
/// timestep bucket and overall, as ADM's `training_losses` computes them per item.
public struct NoiseLossReport: Codable, Equatable {
    public struct Row: Codable, Equatable {
        public var tStart: Int
        public var tEnd: Int
        public var count: Int
        /// nil when the bucket is empty (or, for vb, the model learns no variance).
        public var mse: Double?
        public var vb: Double?
        public var loss: Double?
    }
    public var numTimesteps: Int
    public var buckets: [Row]
    public var overall: Row

    public static let fileName = "losses.json"

    public static func load(_ path: String) throws -> NoiseLossReport {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw JobError.io(path: path, reason: "cannot read the loss report: \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(NoiseLossReport.self, from: data) } catch {
            throw JobError.badInput(path: path, reason: "not a noise loss report: \(error)")
        }
    }

    /// A fixed-width table, one line per bucket and the overall means.
    public var table: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%10.6f", $0) } ?? String(repeating: " ", count: 9) + "-" }
        func line(_ label: String, _ r: Row) -> String {
            label.padding(toLength: 13, withPad: " ", startingAt: 0) + String(format: "%9d ", r.count)
                + [r.mse, r.vb, r.loss].map(f).joined(separator: " ")
        }
        var out = ["timesteps        draws        mse         vb       loss"]
        for r in buckets { out.append(line("[\(r.tStart), \(r.tEnd))", r)) }
        out.append(line("all", overall))
        return out.joined(separator: "\n")
    }
}
