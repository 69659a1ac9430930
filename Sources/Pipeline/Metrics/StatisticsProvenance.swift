import Foundation

/// How a statistics file was made, written as JSON beside it
/// (`STATS.npz` → `STATS.provenance.json`): most "my FID does not match"
/// reports come from a difference recorded here.
public struct StatisticsProvenance: Codable, Equatable {
    public var format = "dit-pipeline/fid-statistics/1"
    /// The feature extractor, e.g. "pytorch-fid FIDInceptionV3 pool3 (2048)".
    public var extractor: String
    /// SHA-256 of the weights file the extractor loaded.
    public var weightsSHA256: String
    public var weightsFile: String
    /// `InceptionPreprocessing` raw value: which resize and normalisation.
    public var preprocessing: String
    public var imageCount: Int
    /// Where the images came from (a path, or a job description).
    public var source: String
    /// The sampling recipe (model, sampler, steps, cfg scale, seed...) when the
    /// images came from a sample job.
    public var samplingRecipe: [String: String]?
    /// Which arrays the file holds (e.g. ["mu", "sigma", "mu_s", "sigma_s"]).
    public var arrays: [String]
    public var created: String

    public init(extractor: String, weightsSHA256: String, weightsFile: String, preprocessing: InceptionPreprocessing,
                imageCount: Int, source: String, samplingRecipe: [String: String]? = nil, arrays: [String]) {
        self.extractor = extractor; self.weightsSHA256 = weightsSHA256; self.weightsFile = weightsFile
        self.preprocessing = preprocessing.rawValue; self.imageCount = imageCount; self.source = source
        self.samplingRecipe = samplingRecipe; self.arrays = arrays
        created = ISO8601DateFormatter().string(from: Date())
    }

    /// `x/STATS.npz` → `x/STATS.provenance.json`.
    public static func path(forStatistics path: String) -> String {
        (path.hasSuffix(".npz") ? String(path.dropLast(4)) : path) + ".provenance.json"
    }

    public func write(besideStatistics statsPath: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self), to: StatisticsProvenance.path(forStatistics: statsPath))
    }

    public static func read(besideStatistics statsPath: String) throws -> StatisticsProvenance {
        let p = path(forStatistics: statsPath)
        guard let d = FileManager.default.contents(atPath: p) else { throw MetricsError.format("\(p): cannot read") }
        do { return try JSONDecoder().decode(StatisticsProvenance.self, from: d) } catch {
            throw MetricsError.format("\(p): not a provenance record (\(error))")
        }
    }
}

/// SHA-256 (FIPS 180-4) of a file, streamed, for provenance records.
public enum FileSHA256 {
    public static func hex(path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw MetricsError.format("\(path): cannot open to hash") }
        defer { try? h.close() }
        var s = SHA256State()
        while true {
            let chunk = h.readData(ofLength: 1 << 22)
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { s.update($0) }
        }
        return s.finalHex()
    }
}

private struct SHA256State {
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var block = [UInt8](); var length: UInt64 = 0
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]

    mutating func update(_ buf: UnsafeRawBufferPointer) {
        length += UInt64(buf.count)
        var i = 0
        if !block.isEmpty {
            while i < buf.count && block.count < 64 { block.append(buf[i]); i += 1 }
            if block.count == 64 { block.withUnsafeBytes { compress($0.baseAddress!) }; block.removeAll(keepingCapacity: true) }
        }
        while i + 64 <= buf.count { compress(buf.baseAddress! + i); i += 64 }
        while i < buf.count { block.append(buf[i]); i += 1 }
    }

    mutating func compress(_ p: UnsafeRawPointer) {
        @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
        var w = [UInt32](repeating: 0, count: 64)
        for t in 0..<16 { w[t] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
        for t in 16..<64 {
            let s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3)
            let s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10)
            w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for t in 0..<64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ SHA256State.k[t] &+ w[t]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            hh = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
    }

    mutating func finalHex() -> String {
        let bits = length &* 8
        var pad: [UInt8] = [0x80]
        while (Int(length % 64) + pad.count) % 64 != 56 { pad.append(0) }
        for i in (0..<8).reversed() { pad.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i)))) }
        pad.withUnsafeBytes { update($0) }
        return h.map { String(format: "%08x", $0) }.joined()
    }
}
