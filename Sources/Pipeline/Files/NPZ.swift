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
        let member = "\(path):\(name).npy"
        // The preamble (10 bytes, 12 from version 2 on), then the header dict, each
        // read only once its length is known to fit the member.
        guard s.remaining >= 10 else { throw NPYError(file: member, reason: "member of \(s.remaining) bytes is too short for a .npy header") }
        var header = [UInt8](repeating: 0, count: 10)
        try header.withUnsafeMutableBytes { try s.read(into: $0.baseAddress!, count: 10) }
        guard Array(header[0..<6]) == NPY.magic else { throw NPYError(file: member, reason: "not a .npy member (bad magic)") }
        let pre = try NPY.preambleLength(major: header[6], file: member)
        if pre > 10 {
            guard s.remaining >= pre - 10 else { throw NPYError(file: member, reason: "truncated .npy header") }
            header += [UInt8](repeating: 0, count: pre - 10)
            try header.withUnsafeMutableBytes { try s.read(into: $0.baseAddress! + 10, count: pre - 10) }
        }
        let hlen = try NPY.headerLength(header, file: member)
        guard hlen <= s.remaining else {
            throw NPYError(file: member, reason: "header length \(hlen) runs past the member's \(s.entry.size) bytes (truncated?)")
        }
        header += [UInt8](repeating: 0, count: hlen)
        try header.withUnsafeMutableBytes { try s.read(into: $0.baseAddress! + pre, count: hlen) }
        let (dtype, shape, offset) = try NPY.parseHeader(Data(header), file: member)
        guard offset == header.count else { throw NPYError(file: member, reason: "inconsistent .npy header length") }
        // The member's size is bounded by the file (stored) or by deflate's ratio
        // (`ZipDirectory`), so an accepted header never asks for more than that.
        let need = try NPY.checkedByteCount(shape: shape, dtype: dtype, file: member)
        guard s.remaining == need else {
            throw NPYError(file: member, reason: "header 'shape' \(shape) of '\(dtype.rawValue)' needs \(need) bytes, the member holds \(s.remaining)")
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
        let n = s.remaining
        // A deflated member's size is only what its directory entry claims: memory
        // grows with the bytes that really inflate, in slices, not with the claim.
        let slice = s.entry.method == 0 ? max(n, 1) : 1 << 26
        var data = Data()
        while data.count < n {
            let start = data.count, k = min(slice, n - start)
            data.count = start + k
            try data.withUnsafeMutableBytes { try s.read(into: $0.baseAddress! + start, count: k) }
        }
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
        if k * rowBytes > 0 {  // an empty Data has no base address
            try data.withUnsafeMutableBytes { try stream.read(into: $0.baseAddress!, count: k * rowBytes) }
        }
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
        let dataBytes = try NPY.checkedByteCount(shape: shape, dtype: dtype, file: "\(path):\(name).npy")
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
