import Foundation

/// One output file of a shard as the ledger records it: path relative to the job's
/// output folder, size in bytes, SHA-256 hex.
public struct FileDigest: Codable, Equatable, Hashable, Sendable {
    public var path: String
    public var size: Int64
    public var sha256: String
    public init(path: String, size: Int64, sha256: String) {
        self.path = path; self.size = size; self.sha256 = sha256
    }

    /// The size and sha256 of the file `relative` (a path under `root`), recorded by its relative path.
    public static func of(_ relative: String, under root: String) throws -> FileDigest {
        let (size, sha) = try SHA256.file(root + "/" + relative)
        return FileDigest(path: relative, size: size, sha256: sha)
    }
}

/// A shard output written through `AtomicFileWriter`, with its size and SHA-256 computed
/// while the bytes go out, so the digest the worker reports is of exactly what it wrote.
public final class OutputFileWriter {
    private let file: AtomicFileWriter
    private var hasher = SHA256()
    public var finalPath: String { file.path }

    public init(path: String) throws { file = try AtomicFileWriter(path: path) }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try file.write(bytes)
        hasher.update(bytes)
    }

    /// Commits the file; returns the digest with `path` made relative to `root`.
    public func commit(relativeTo root: String) throws -> FileDigest {
        try file.commit()
        return FileDigest(path: OutputFileWriter.relative(finalPath, to: root), size: file.bytesWritten,
                          sha256: hasher.finalizeHex())
    }

    /// Drops the temporary file (error paths, abandoned shards).
    public func abandon() { file.abandon() }

    /// Writes a whole file atomically.
    public static func write(_ data: Data, to path: String, relativeTo root: String) throws -> FileDigest {
        let w = try OutputFileWriter(path: path)
        try w.write(data)
        return try w.commit(relativeTo: root)
    }

    static func relative(_ path: String, to root: String) -> String {
        let r = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(r) ? String(path.dropFirst(r.count)) : path
    }
}
