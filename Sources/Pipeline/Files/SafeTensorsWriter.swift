import Foundation
import PipelineTensor

/// Builds a safetensors file: add tensors, then `write(to:)`, which writes a
/// temporary file, fsyncs it and renames it into place.
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: DType, shape: [Int], bytes: Data)] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public var names: [String] { entries.map(\.name) }

    public mutating func add(_ name: String, _ t: Tensor) {
        add(name, dtype: .f32, shape: t.shape, bytes: Data(bytes: t.data, count: t.count * 4))
    }

    public mutating func add(_ name: String, float64 values: [Double], shape: [Int]? = nil) {
        let d = values.withUnsafeBufferPointer { Data(buffer: $0) }
        add(name, dtype: .f64, shape: shape ?? [values.count], bytes: d)
    }

    public mutating func add(_ name: String, int64 values: [Int64], shape: [Int]? = nil) {
        let d = values.withUnsafeBufferPointer { Data(buffer: $0) }
        add(name, dtype: .i64, shape: shape ?? [values.count], bytes: d)
    }

    public mutating func add(_ name: String, uint8 values: [UInt8], shape: [Int]) {
        add(name, dtype: .u8, shape: shape, bytes: Data(values))
    }

    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: Data) {
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "safetensors: '\(name)' bytes do not match \(shape)")
        entries.removeAll { $0.name == name }
        entries.append((name, dtype, shape, bytes))
    }

    /// The encoded file.
    public func encoded() throws -> Data {
        let sorted = entries.sorted { $0.name < $1.name }
        var header: [String: Any] = [:]
        var offset = 0
        for e in sorted {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        for e in sorted { out.append(e.bytes) }
        return out
    }

    public func write(to path: String) throws {
        try AtomicFile.write(try encoded(), to: path)
    }
}
