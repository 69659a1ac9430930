import Foundation
import PipelineTensor
import PipelineFiles

/// Rewrites any weights file `WeightsFile.open` reads as safetensors.
///
/// PyTorch checkpoints have their storage CRC-32s checked first.
/// Dtypes are kept as stored (F32/F16/BF16/I64/... bytes copied bit for bit);
/// `upcastToFloat32` writes every floating-point tensor as F32 instead. Tensors
/// are streamed from the memory-mapped input one at a time, so a multi-GB
/// checkpoint is never held in memory; strided tensors are written row-major.
/// The output is written to a temporary file, fsynced and renamed into place.
public enum WeightsConversion {
    public struct Summary: Equatable {
        public var tensors: Int
        public var bytes: Int
        /// The checkpoint entry served ("ema", "model", ...), when the input had a choice.
        public var servedEntry: String?
        public var skippedEntries: [String]
    }

    @discardableResult
    public static func toSafeTensors(input: String, output: String, pick: CheckpointPick = .ema,
                                     upcastToFloat32: Bool = false,
                                     progress: (_ bytesWritten: Int, _ totalBytes: Int) -> Void = { _, _ in }) throws -> Summary {
        let source = try WeightsFile.open(input, pick: pick)
        var metadata = ["format": "pt", "converted_from": URL(fileURLWithPath: input).lastPathComponent]
        var served: String?
        var skipped: [String] = []
        if let ckpt = source as? TorchCheckpoint {
            // A conversion reads every byte anyway: check the zip checksums so a damaged
            // checkpoint is not silently turned into a clean-looking safetensors file.
            try ckpt.verifyChecksums()
            served = ckpt.servedEntry
            skipped = ckpt.skippedEntries
            if let s = served { metadata["checkpoint_entry"] = s }
        } else if let st = source as? SafeTensorsFile {
            metadata.merge(st.metadata) { ours, _ in ours }
        }

        // Header: sorted keys, offsets in that order, padded with spaces to 8 bytes.
        let names = source.keys.sorted()
        var header: [String: Any] = ["__metadata__": metadata]
        var layout: [(name: String, info: TensorInfo, outType: DType)] = []
        var offset = 0
        for name in names {
            guard let info = source.info(name) else { throw WeightError.missingKey(file: input, key: name) }
            let outType: DType = upcastToFloat32 && info.dtype.isFloat ? .f32 : info.dtype
            let n = info.count * outType.size
            header[name] = ["dtype": outType.rawValue, "shape": info.shape, "data_offsets": [offset, offset + n]]
            layout.append((name, info, outType))
            offset += n
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }

        let out = try AtomicFileWriter(path: output)
        do {
            var len = UInt64(json.count).littleEndian
            try withUnsafeBytes(of: &len) { try out.write($0) }
            try json.withUnsafeBytes { try out.write($0) }
            var written = 0
            for e in layout {
                defer {
                    written += e.info.count * e.outType.size
                    progress(written, offset)
                }
                try source.withRawBytes(e.name) { raw in
                    if e.outType == e.info.dtype {
                        try out.write(UnsafeRawBufferPointer(start: raw, count: e.info.count * e.info.dtype.size))
                    } else {
                        let t = Tensor(uninitialized: e.info.shape)
                        DTypeConvert.toFloat32(raw, dtype: e.info.dtype, count: e.info.count, into: t.data)
                        try out.write(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
                    }
                }
            }
            try out.commit()
        } catch {
            out.abandon()
            throw error
        }
        return Summary(tensors: layout.count, bytes: 8 + json.count + offset, servedEntry: served, skippedEntries: skipped)
    }
}
