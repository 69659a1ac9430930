import Foundation

/// One output file of a shard as the ledger records it: path relative to the job's
/// output folder, size in bytes, SHA-256 hex.
public struct FileDigest: Codable, Equatable, Hashable {
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

/// Crash-safe output writing for shard executors: bytes go to a hidden temporary file in
/// the destination folder, are fsynced, then renamed into place (and the folder fsynced),
/// so a reader (or the coordinator's verification) never sees a half-written file under
/// the final name. Size and SHA-256 are computed while writing.
public final class OutputFileWriter {
    public let finalPath: String
    private let tmpPath: String
    private var fd: Int32
    private var hasher = SHA256()
    private var written: Int64 = 0

    public init(path: String) throws {
        finalPath = path
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try OutputFileWriter.makeDirectory(dir)
        tmpPath = dir + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tmpPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JobError.io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))") }
    }

    deinit { if fd >= 0 { abandon() } }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write(UnsafeRawBufferPointer($0)) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw JobError.io(path: finalPath, reason: "write after close") }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, base + done, bytes.count - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let reason = n == 0 ? "short write" : String(cString: strerror(errno))
                abandon()
                throw JobError.io(path: finalPath, reason: "write failed: \(reason)")
            }
            done += n
        }
        hasher.update(bytes)
        written += Int64(bytes.count)
    }

    /// fsync + rename into place; returns the digest with `path` made relative to `root`.
    public func commit(relativeTo root: String) throws -> FileDigest {
        guard fd >= 0 else { throw JobError.io(path: finalPath, reason: "commit after close") }
        if fsync(fd) != 0 {
            let r = String(cString: strerror(errno)); abandon()
            throw JobError.io(path: finalPath, reason: "fsync failed: \(r)")
        }
        close(fd); fd = -1
        guard rename(tmpPath, finalPath) == 0 else {
            let r = String(cString: strerror(errno)); unlink(tmpPath)
            throw JobError.io(path: finalPath, reason: "rename failed: \(r)")
        }
        let dir = URL(fileURLWithPath: finalPath).deletingLastPathComponent().path
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        return FileDigest(path: OutputFileWriter.relative(finalPath, to: root), size: written, sha256: hasher.finalizeHex())
    }

    /// Drops the temporary file (error paths, abandoned shards).
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmpPath)
    }

    /// Writes a whole file atomically.
    public static func write(_ data: Data, to path: String, relativeTo root: String) throws -> FileDigest {
        let w = try OutputFileWriter(path: path)
        try w.write(data)
        return try w.commit(relativeTo: root)
    }

    /// `mkdir -p` with the system's reason on failure (no space, not a folder, read-only...).
    public static func makeDirectory(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { return }
            throw JobError.io(path: path, reason: "exists and is not a folder")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw JobError.io(path: path, reason: "cannot create folder: \(String(cString: strerror(errno)))")
        }
    }

    /// Whether a file name is one of this writer's temporaries.
    public static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }

    /// Removes temporaries that killed writers left under `root` (run when no attempt of
    /// the job can still be writing: before its finalize step). Returns how many.
    @discardableResult
    public static func removeTemporaries(under root: String) -> Int {
        var n = 0
        guard let e = FileManager.default.enumerator(atPath: root) else { return 0 }
        while let p = e.nextObject() as? String {
            if isTemporary((p as NSString).lastPathComponent), unlink(root + "/" + p) == 0 { n += 1 }
        }
        return n
    }

    static func relative(_ path: String, to root: String) -> String {
        let r = root.hasSuffix("/") ? root : root + "/"
        return path.hasPrefix(r) ? String(path.dropFirst(r.count)) : path
    }
}
