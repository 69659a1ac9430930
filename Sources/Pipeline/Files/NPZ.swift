import Foundation

/// A NumPy .npz archive opened for reading: a zip of `NAME.npy` members, stored
/// (`np.savez`) or deflated (`np.savez_compressed`), zip64 included. Small
/// arrays are read whole (`array`); large ones (an ADM batch's `arr_0`) are
/// read in batches of rows (`rows`), never all at once.
public final class NPZFile {
    public let path: String
    let zip: ZipReader

    public init(path: String) throws {
        self.path = path
        zip = try ZipReader(path: path)
    }

    /// Array names (member names without `.npy`), in archive order.
    public var names: [String] {
        zip.entries.compactMap { $0.name.hasSuffix(".npy") ? String($0.name.dropLast(4)) : nil }
    }

    public func contains(_ name: String) -> Bool { zip.entry(named: name + ".npy") != nil }

    private func open(_ name: String) throws -> (ZipEntryStream, NPYDType, [Int]) {
        guard let e = zip.entry(named: name + ".npy") else {
            throw NPYError(file: path, reason: "no array '\(name)' (has: \(names.joined(separator: ", ")))")
        }
        let s = try zip.stream(e)
        // The header: 10- or 12-byte preamble, then the dict; read the preamble first.
        let preLen = min(12, s.remaining)
        var pre = [UInt8](repeating: 0, count: preLen)
        try pre.withUnsafeMutableBytes { try s.read(into: $0.baseAddress!, count: preLen) }
        guard preLen >= 10, Array(pre[0..<6]) == NPY.magic else { throw NPYError(file: "\(path):\(name)", reason: "not a .npy member (bad magic)") }
        let hlen = pre[6] == 1 ? Int(pre[8]) | Int(pre[9]) << 8 : Int(pre.u32(8))
        let total = (pre[6] == 1 ? 10 : 12) + hlen
        guard total <= s.entry.uncompressedSize, hlen < 1 << 20 else { throw NPYError(file: "\(path):\(name)", reason: "truncated .npy header") }
        var header = pre
        header += [UInt8](repeating: 0, count: total - preLen)
        try header.withUnsafeMutableBytes { try s.read(into: $0.baseAddress! + preLen, count: total - preLen) }
        let (dtype, shape, offset) = try NPY.parseHeader(Data(header), file: "\(path):\(name)")
        guard offset == total else { throw NPYError(file: "\(path):\(name)", reason: "inconsistent .npy header length") }
        let need = shape.reduce(1, *) * dtype.size
        guard s.remaining == need else {
            throw NPYError(file: "\(path):\(name)", reason: "\(shape) of \(dtype.rawValue) needs \(need) bytes, member holds \(s.remaining)")
        }
        return (s, dtype, shape)
    }

    /// Element type and shape of `name` without reading its data.
    public func header(_ name: String) throws -> (dtype: NPYDType, shape: [Int]) {
        let (_, d, s) = try open(name)
        return (d, s)
    }

    /// The whole array.
    public func array(_ name: String) throws -> NPYArray {
        let (s, dtype, shape) = try open(name)
        var data = Data(count: s.remaining)
        let n = s.remaining
        try data.withUnsafeMutableBytes { try s.read(into: $0.baseAddress!, count: n) }
        return NPYArray(dtype: dtype, shape: shape, data: data)
    }

    /// Batches of at most `batch` rows (first dimension) of `name`, in order.
    public func rows(_ name: String, batch: Int) throws -> NPZRowIterator {
        let (s, dtype, shape) = try open(name)
        guard !shape.isEmpty else { throw NPYError(file: "\(path):\(name)", reason: "a scalar has no rows") }
        return NPZRowIterator(stream: s, dtype: dtype, shape: shape, batch: max(1, batch))
    }
}

/// Pulls rows of one .npz member in batches; each `next()` reads only its batch.
public struct NPZRowIterator {
    let stream: ZipEntryStream
    public let dtype: NPYDType
    /// The full array's shape.
    public let shape: [Int]
    public let batch: Int
    public private(set) var rowsRead = 0

    init(stream: ZipEntryStream, dtype: NPYDType, shape: [Int], batch: Int) {
        self.stream = stream; self.dtype = dtype; self.shape = shape; self.batch = batch
    }

    public var rowCount: Int { shape[0] }

    /// Skips the next `rows` rows (a shard of the array starts there).
    public mutating func skip(rows: Int) throws {
        let k = min(max(rows, 0), rowCount - rowsRead)
        try stream.skip(k * shape.dropFirst().reduce(1, *) * dtype.size)
        rowsRead += k
    }

    /// The next batch (shape [k] + shape[1...]), or nil after the last row.
    public mutating func next() throws -> NPYArray? { try next(maxRows: batch) }

    /// The next at most `maxRows` rows, or nil when none are left (or `maxRows` is 0).
    public mutating func next(maxRows: Int) throws -> NPYArray? {
        let k = min(maxRows, rowCount - rowsRead)
        guard k > 0 else { return nil }
        let rowBytes = shape.dropFirst().reduce(1, *) * dtype.size
        var data = Data(count: k * rowBytes)
        try data.withUnsafeMutableBytes { try stream.read(into: $0.baseAddress!, count: k * rowBytes) }
        rowsRead += k
        return NPYArray(dtype: dtype, shape: [k] + shape.dropFirst(), data: data)
    }
}

/// Writes a .npz archive that NumPy (`np.load`), pytorch-fid and ADM's
/// evaluator read. Whole arrays via `add`; an array too large for memory via
/// `beginArray` (its header: dtype and full shape), `append` (raw C-order
/// bytes, any chunking) and `endArray`. `finish()` makes the file appear
/// atomically (temporary file, fsync, rename).
public final class NPZWriter {
    public let path: String
    public let compression: ZipWriter.Compression
    private let zip: ZipWriter
    private var open: (name: String, expected: Int, written: Int)?

    public init(path: String, compressed: Bool = false, forceZip64: Bool = false) throws {
        self.path = path
        compression = compressed ? .deflate(level: 6) : .stored
        zip = try ZipWriter(path: path, forceZip64: forceZip64)
    }

    public func add(_ name: String, _ array: NPYArray) throws {
        try beginArray(name, dtype: array.dtype, shape: array.shape)
        try array.data.withUnsafeBytes { try append($0) }
        try endArray()
    }

    public func beginArray(_ name: String, dtype: NPYDType, shape: [Int]) throws {
        guard open == nil else { throw NPYError(file: path, reason: "beginArray('\(name)') while '\(open!.name)' is open") }
        let header = NPY.header(dtype: dtype, shape: shape)
        let dataBytes = shape.reduce(1, *) * dtype.size
        try zip.begin(name + ".npy", compression: compression, expectedSize: header.count + dataBytes)
        try zip.append(header)
        open = (name, dataBytes, 0)
    }

    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard var o = open else { throw NPYError(file: path, reason: "append with no open array") }
        guard o.written + bytes.count <= o.expected else {
            throw NPYError(file: path, reason: "array '\(o.name)': \(o.written + bytes.count) bytes exceed its declared \(o.expected)")
        }
        try zip.append(bytes)
        o.written += bytes.count
        open = o
    }

    public func endArray() throws {
        guard let o = open else { throw NPYError(file: path, reason: "endArray with no open array") }
        guard o.written == o.expected else {
            throw NPYError(file: path, reason: "array '\(o.name)': \(o.written) bytes written, header declares \(o.expected)")
        }
        try zip.end()
        open = nil
    }

    public func finish() throws {
        guard open == nil else { throw NPYError(file: path, reason: "finish with array '\(open!.name)' open") }
        try zip.finish()
    }

    /// Writes named arrays in one go.
    public static func write(_ arrays: [(String, NPYArray)], to path: String, compressed: Bool = false) throws {
        let w = try NPZWriter(path: path, compressed: compressed)
        for (n, a) in arrays { try w.add(n, a) }
        try w.finish()
    }
}
