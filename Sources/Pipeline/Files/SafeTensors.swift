import Foundation

/// A memory-mapped safetensors file (the Hugging Face format: an 8-byte
/// little-endian header length, a JSON header, then the raw tensor bytes).
public final class SafeTensorsFile: TensorSource {
    public let path: String
    public var sourceName: String { path }
    public let metadata: [String: String]
    public private(set) var keys: [String]
    private var entries: [String: (info: TensorInfo, offset: Int)] = [:]
    private let mapping: MappedFile

    public init(path: String) throws {
        self.path = path
        mapping = try MappedFile(path: path)
        let size = mapping.size
        guard size >= 8 else { throw WeightError.malformed(file: path, reason: "file is \(size) bytes, too short for a safetensors header") }
        let base = mapping.bytes
        // Compared as UInt64 first: a hostile length above Int.max must be an error, not a trap.
        let rawLen = UInt64(littleEndian: UnsafeRawPointer(base).loadUnaligned(as: UInt64.self))
        guard rawLen > 0, rawLen <= UInt64(size - 8), rawLen < 100_000_000 else {
            throw WeightError.malformed(file: path, reason: "header length \(rawLen) does not fit a \(size)-byte file (truncated, or not safetensors)")
        }
        let headerLen = Int(rawLen)
        let headerData = Data(bytes: base + 8, count: headerLen)
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw WeightError.malformed(file: path, reason: "header is not a JSON object")
        }
        let dataStart = 8 + headerLen
        let dataSize = size - dataStart
        var meta: [String: String] = [:]
        var names: [String] = []
        var spans: [(start: Int, end: Int, name: String)] = []
        for (name, value) in json {
            if name == "__metadata__" {
                if let m = value as? [String: Any] { for (k, v) in m { meta[k] = "\(v)" } }
                continue
            }
            guard let d = value as? [String: Any], let dt = d["dtype"] as? String,
                  let shapeAny = d["shape"] as? [Any], let offs = d["data_offsets"] as? [Any], offs.count == 2 else {
                throw WeightError.malformed(file: path, reason: "entry '\(name)' lacks dtype, shape or data_offsets")
            }
            guard let dtype = DType(rawValue: dt) else {
                throw WeightError.unsupportedDType(file: path, key: name, dtype: dt)
            }
            // Whole, non-negative numbers only (JSON numbers arrive as NSNumber; 2.5 or 1e30 are refused).
            func integer(_ v: Any) -> Int? {
                guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0 else { return nil }
                return i
            }
            let shape = shapeAny.compactMap(integer)
            let o = offs.compactMap(integer)
            guard shape.count == shapeAny.count, o.count == 2 else {
                throw WeightError.malformed(file: path, reason: "entry '\(name)' has a bad shape or offsets")
            }
            var bytes = dtype.size
            for n in shape {
                let (b, overflow) = bytes.multipliedReportingOverflow(by: n)
                guard !overflow else { throw WeightError.malformed(file: path, reason: "entry '\(name)': shape \(shape) is too large") }
                bytes = b
            }
            guard o[0] <= o[1], o[1] - o[0] == bytes else {
                throw WeightError.malformed(file: path, reason: "entry '\(name)': offsets \(o) do not hold \(shape) of \(dt)")
            }
            guard o[1] <= dataSize else {
                throw WeightError.malformed(file: path, reason: "entry '\(name)' ends past the end of the file (truncated?)")
            }
            entries[name] = (TensorInfo(dtype: dtype, shape: shape), dataStart + o[0])
            names.append(name)
            spans.append((o[0], o[1], name))
        }
        // As the format requires (and the reference implementation checks): the
        // tensors tile the data section exactly, with no overlap, gap or tail.
        var end = 0
        for s in spans.sorted(by: { ($0.start, $0.end) < ($1.start, $1.end) }) {
            guard s.start == end else {
                throw WeightError.malformed(file: path, reason: s.start < end
                    ? "entry '\(s.name)' overlaps the tensor before it (offsets \(s.start)..<\(s.end))"
                    : "gap of \(s.start - end) bytes before entry '\(s.name)'")
            }
            end = s.end
        }
        guard end == dataSize else {
            throw WeightError.malformed(file: path, reason: "\(dataSize - end) bytes after the last tensor are not described by the header")
        }
        metadata = meta
        keys = names.sorted()
    }

    public func info(_ key: String) -> TensorInfo? { entries[key]?.info }

    public func withRawBytes<R>(_ key: String, _ body: (UnsafeRawPointer) throws -> R) throws -> R {
        guard let e = entries[key] else { throw WeightError.missingKey(file: path, key: key) }
        return try body(UnsafeRawPointer(mapping.bytes + e.offset))
    }
}
