import Foundation
import PipelineFiles

/// A storage of a torch checkpoint: the zip member `<archive>/data/<key>`,
/// `numel` elements of `dtype`, read in place from the mapped file.
final class TorchStorage {
    let key: String
    let dtype: DType
    let numel: Int
    /// Absolute offset of the first byte in the file (-1 until a legacy file's storages are located).
    var fileOffset: Int
    init(key: String, dtype: DType, numel: Int, fileOffset: Int) {
        self.key = key; self.dtype = dtype; self.numel = numel; self.fileOffset = fileOffset
    }
}

/// A tensor view of a storage (`torch._utils._rebuild_tensor_v2`), checked to lie inside it.
final class TorchTensor {
    let storage: TorchStorage
    /// Element offset into the storage.
    let offset: Int
    let shape: [Int]
    let strides: [Int]
    let count: Int
    /// Row-major and dense, so its bytes can be served in place.
    let isContiguous: Bool

    static let maxExpandedBytes = 1 << 30

    init(storage: TorchStorage, offset: Int, shape: [Int], strides: [Int], file: String) throws {
        func bad(_ r: String) -> WeightError { .malformed(file: file, reason: "tensor on storage '\(storage.key)': \(r)") }
        guard shape.count == strides.count else { throw bad("size \(shape) and stride \(strides) differ in rank") }
        guard offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
            throw bad("negative offset, size or stride (offset \(offset), size \(shape), stride \(strides))")
        }
        var count = 1, last = offset
        for (n, s) in zip(shape, strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n)
            let (span, o2) = max(n - 1, 0).multipliedReportingOverflow(by: s)
            let (l, o3) = last.addingReportingOverflow(span)
            guard !o1, !o2, !o3 else { throw bad("size \(shape) with stride \(strides) overflows") }
            count = c; last = l
        }
        if count > 0, last >= storage.numel {
            throw bad("size \(shape), stride \(strides) at offset \(offset) reach element \(last) of a \(storage.numel)-element storage")
        }
        // Views with stride 0 or overlapping strides hold more elements than their
        // storage; they are materialised on access, so bound what that may cost.
        let (bytes, o4) = count.multipliedReportingOverflow(by: storage.dtype.size)
        if count > storage.numel, o4 || bytes > Self.maxExpandedBytes {
            throw bad("size \(shape) with stride \(strides) expands a \(storage.numel)-element storage beyond \(Self.maxExpandedBytes >> 30) GiB")
        }
        // Row-major check; `expected` is a partial product of `shape`, which cannot
        // overflow while `count` did not, except when a 0 elsewhere hid a huge dim.
        var expected = 1, contiguous = true
        for (n, s) in zip(shape, strides).reversed() where n != 1 {
            if s != expected { contiguous = false }
            let (e, overflow) = expected.multipliedReportingOverflow(by: n)
            if overflow { contiguous = false; break }
            expected = e
        }
        self.storage = storage; self.offset = offset; self.shape = shape; self.strides = strides
        self.count = count; self.isContiguous = contiguous || count == 0
    }

    /// Copies the strided elements into `dst` in row-major order.
    func gather(from base: UnsafeRawPointer, into dst: UnsafeMutableRawPointer) {
        let esz = storage.dtype.size
        let src = base + storage.fileOffset + offset * esz
        let rank = shape.count
        guard count > 0 else { return }
        if rank == 0 { dst.copyMemory(from: src, byteCount: esz); return }
        let inner = shape[rank - 1], innerStride = strides[rank - 1] * esz
        var index = [Int](repeating: 0, count: rank)
        var out = 0
        while true {
            var o = 0
            for d in 0..<(rank - 1) { o += index[d] * strides[d] }
            let row = src + o * esz
            if innerStride == esz {
                (dst + out).copyMemory(from: row, byteCount: inner * esz)
            } else {
                for j in 0..<inner { (dst + out + j * esz).copyMemory(from: row + j * innerStride, byteCount: esz) }
            }
            out += inner * esz
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }
}

/// An instance of an allow-listed class built without running any code
/// (`argparse.Namespace` in train.py's `args`): the type name and its state.
final class InertObject {
    let type: String
    var state: PickleValue?
    init(type: String) { self.type = type }
}

/// The allow-list of `torch.save` state dicts and train.py checkpoints, and what
/// each allowed global means. Nothing is imported or executed: a global off the
/// list is `WeightError.forbiddenGlobal`.
final class TorchPickleHooks: PickleHooks {
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]
    static let allowed: Set<String> = [
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
        "torch.Tensor", "torch.nn.parameter.Parameter",
        "argparse.Namespace",
        // Protocol 2 writes `bytes` as _codecs.encode(str, "latin1") and sets as set(list).
        "_codecs.encode", "builtins.set", "builtins.frozenset", "__builtin__.set", "__builtin__.frozenset",
    ]

    /// Where storage bytes live.
    enum Container {
        /// Member `<prefix>data/<key>` of the zip archive (prefix: "archive/").
        case zip(ZipDirectory, prefix: String)
        /// After the pickles, in the legacy format: located later by `TorchLegacyFormat`.
        case legacy
    }

    let file: String
    let container: Container
    private(set) var storages: [String: TorchStorage] = [:]
    /// The zip members of the storages loaded so far, in order.
    private(set) var members: [(key: String, entry: ZipEntry)] = []

    init(file: String, container: Container) {
        self.file = file; self.container = container
    }

    func bad(_ r: String) -> WeightError { .malformed(file: file, reason: r) }

    func resolveGlobal(module: String, name: String) throws -> PickleValue {
        let full = "\(module).\(name)"
        if Self.allowed.contains(full) || (module == "torch" && Self.storageTypes[name] != nil) {
            return .global(module: module, name: name)
        }
        throw WeightError.forbiddenGlobal(file: file, name: full)
    }

    private func name(_ v: PickleValue) -> String? {
        if case let .global(m, n) = v { return "\(m).\(n)" }
        return nil
    }

    func call(_ callable: PickleValue, args: [PickleValue]) throws -> PickleValue {
        switch name(callable) {
        case "collections.OrderedDict":
            let d = PickleDict()
            if let first = args.first, case let .list(pairs) = first {
                for p in pairs.items {
                    guard case let .tuple(kv) = p, kv.count == 2 else { throw bad("OrderedDict built from a non-pair") }
                    d.items.append((kv[0], kv[1]))
                }
            }
            return .dict(d)
        case "torch._utils._rebuild_tensor_v2":
            return .opaque(try rebuildTensor(args))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let data = args.first, case let .opaque(t) = data, t is TorchTensor else {
                throw bad("_rebuild_parameter without a tensor")
            }
            return data
        case "torch._tensor._rebuild_from_type_v2":
            // (func, new_type, args, state): only plain tensors and Parameters.
            guard args.count >= 3, case let .tuple(inner) = args[2],
                  ["torch.Tensor", "torch.nn.parameter.Parameter"].contains(name(args[1]) ?? "") else {
                throw bad("_rebuild_from_type_v2 for a type other than Tensor/Parameter")
            }
            return try call(args[0], args: inner)
        case "_codecs.encode":
            guard let first = args.first, case let .string(s) = first else { throw bad("_codecs.encode without a string") }
            if args.count > 1, case let .string(enc) = args[1], !["latin1", "latin-1", "iso-8859-1"].contains(enc.lowercased()) {
                throw bad("_codecs.encode with encoding '\(enc)'")
            }
            var bytes: [UInt8] = []
            for u in s.unicodeScalars {
                guard u.value < 256 else { throw bad("_codecs.encode: text is not latin-1") }
                bytes.append(UInt8(u.value))
            }
            return .bytes(bytes)
        case "builtins.set", "builtins.frozenset", "__builtin__.set", "__builtin__.frozenset":
            let l = PickleList()
            if let first = args.first, case let .list(items) = first { l.items = items.items }
            return .list(l)
        default:
            throw bad("pickle calls \(name(callable) ?? callable.kind), which is not a function")
        }
    }

    func newObject(_ cls: PickleValue, args: [PickleValue]) throws -> PickleValue {
        switch name(cls) {
        case "argparse.Namespace": return .opaque(InertObject(type: "argparse.Namespace"))
        case "collections.OrderedDict": return .dict(PickleDict())
        default: throw bad("pickle instantiates \(name(cls) ?? cls.kind), which is not an allowed class")
        }
    }

    func build(_ object: PickleValue, state: PickleValue) throws -> PickleValue {
        switch object {
        case .dict: return object // OrderedDict attributes such as `_metadata`: not needed
        case let .opaque(o as InertObject): o.state = state; return object
        default: throw bad("pickle sets the state of a \(object.kind)")
        }
    }

    func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        // ('storage', torch.<T>Storage, key, location, numel), plus view metadata (None) in the legacy format.
        guard case let .tuple(t) = pid, t.count == 5 || t.count == 6, case let .string(tag) = t[0], tag == "storage",
              case let .global(module, type) = t[1], module == "torch", let dtype = Self.storageTypes[type],
              case let .string(key) = t[2], case let .int(numel64) = t[4], numel64 >= 0 else {
            throw bad("unrecognised persistent id \(pid.kind) in the pickle (expected ('storage', type, key, location, numel))")
        }
        if t.count == 6, case .tuple = t[5] {
            throw bad("storage '\(key)' is a legacy storage view, which is not supported")
        }
        if let s = storages[key] {
            guard s.dtype == dtype else { throw bad("storage '\(key)' is used as both \(s.dtype) and \(dtype)") }
            return .opaque(s)
        }
        let numel = Int(numel64)
        let (bytes, overflow) = numel.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw bad("storage '\(key)' of \(numel) elements is too large") }
        let s: TorchStorage
        switch container {
        case .legacy:
            s = TorchStorage(key: key, dtype: dtype, numel: numel, fileOffset: -1)
        case let .zip(zip, prefix):
            let member = prefix + "data/" + key
            guard let entry = zip[member] else { throw bad("storage '\(key)' has no member '\(member)' in the archive") }
            guard entry.method == 0 else {
                throw bad("member '\(member)' is compressed (method \(entry.method)); torch.save stores members uncompressed")
            }
            guard bytes <= entry.size else {
                throw bad("member '\(member)' holds \(entry.size) bytes, fewer than \(numel) elements of \(dtype.rawValue)")
            }
            s = TorchStorage(key: key, dtype: dtype, numel: numel, fileOffset: entry.dataOffset)
            members.append((key, entry))
        }
        storages[key] = s
        return .opaque(s)
    }

    private func rebuildTensor(_ a: [PickleValue]) throws -> TorchTensor {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        guard a.count >= 4, case let .opaque(so) = a[0], let storage = so as? TorchStorage,
              case let .int(offset) = a[1], let shape = ints(a[2]), let strides = ints(a[3]) else {
            throw bad("_rebuild_tensor_v2 with unexpected arguments (\(a.map(\.kind).joined(separator: ", ")))")
        }
        return try TorchTensor(storage: storage, offset: Int(offset), shape: shape, strides: strides, file: file)
    }

    private func ints(_ v: PickleValue) -> [Int]? {
        guard case let .tuple(items) = v else { return nil }
        var out: [Int] = []
        for i in items {
            guard case let .int(x) = i else { return nil }
            out.append(Int(x))
        }
        return out
    }
}
