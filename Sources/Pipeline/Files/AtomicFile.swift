import Foundation

/// A file-system failure, naming the file and the system's reason.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
    public var description: String { "\(path): \(reason)" }

    /// The failure of the system call that just set `errno`.
    static func errno(_ path: String, _ what: String) -> FileError {
        FileError(path: path, reason: "\(what): \(String(cString: strerror(Glibc.errno)))")
    }
}

/// The one crash-safe way this project writes a file. Bytes go to a hidden temporary file
/// in the destination folder (`.NAME.tmp-PID-RANDOM`); `commit()` fsyncs it, renames it over
/// the final name and fsyncs the folder, so a reader (or the coordinator's verification)
/// never sees a half-written file under the final name, and a committed file survives a
/// power cut. Writes retry on EINTR and on short writes. An uncommitted writer removes its
/// temporary file (`abandon()`, or when released).
///
/// Not thread-safe: one writer belongs to one thread at a time.
public final class AtomicFileWriter {
    public let path: String
    private let temporaryPath: String
    private var fd: Int32
    /// Bytes appended by `write(_:)` (positioned rewrites do not count).
    public private(set) var bytesWritten: Int64 = 0

    /// Creates the folder if needed and opens the temporary file with `permissions`
    /// (applied exactly, whatever the umask).
    public init(path: String, permissions: mode_t = 0o644) throws {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        try AtomicFileWriter.makeDirectory(dir)
        temporaryPath = dir + "/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw FileError.errno(path, "cannot create") }
        _ = fchmod(fd, permissions)
    }

    deinit { if fd >= 0 { abandon() } }

    public func write(_ data: Data) throws {
        try data.withUnsafeBytes { try write($0) }
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeFully(bytes, at: nil)
        bytesWritten += Int64(bytes.count)
    }

    /// Overwrites `bytes` at `offset` (a header patched after its payload).
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        try writeFully(bytes, at: offset)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer, at offset: Int?) throws {
        guard fd >= 0 else { throw FileError(path: path, reason: "write after commit or abandon") }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, 1 << 30)
            let n = offset.map { Foundation.pwrite(fd, base + done, chunk, off_t($0 + done)) }
                ?? Foundation.write(fd, base + done, chunk)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let error = n == 0 ? FileError(path: path, reason: "write failed: no progress")
                    : FileError.errno(path, "write failed")
                abandon()
                throw error
            }
            done += n
        }
    }

    /// fsync, rename into place, fsync the folder.
    public func commit() throws {
        guard fd >= 0 else { throw FileError(path: path, reason: "commit after commit or abandon") }
        var rc: Int32
        repeat { rc = fsync(fd) } while rc != 0 && errno == EINTR
        if rc != 0 {
            let error = FileError.errno(path, "fsync failed")
            abandon()
            throw error
        }
        close(fd); fd = -1
        guard rename(temporaryPath, path) == 0 else {
            let error = FileError.errno(path, "rename failed")
            unlink(temporaryPath)
            throw error
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            repeat { rc = fsync(dfd) } while rc != 0 && errno == EINTR
            close(dfd)
        }
    }

    /// Drops the temporary file (error paths, abandoned shards).
    public func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }

    /// `mkdir -p` with the system's reason on failure (no space, not a folder, read-only...).
    public static func makeDirectory(_ path: String) throws {
        guard !path.isEmpty else { return }
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return }
            throw FileError(path: path, reason: "exists and is not a folder")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectory(parent) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileError.errno(path, "cannot create folder") }
    }

    /// Whether a file name is one of this writer's temporaries.
    public static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tmp-") }

    /// Removes temporaries that killed writers left under `root` (run when nothing can
    /// still be writing there). Returns how many.
    @discardableResult
    public static func removeTemporaries(under root: String) -> Int {
        var n = 0
        guard let e = FileManager.default.enumerator(atPath: root) else { return 0 }
        while let p = e.nextObject() as? String {
            if isTemporary((p as NSString).lastPathComponent), unlink(root + "/" + p) == 0 { n += 1 }
        }
        return n
    }
}

/// Whole-file writes through `AtomicFileWriter`.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String, permissions: mode_t = 0o644) throws {
        let writer = try AtomicFileWriter(path: path, permissions: permissions)
        try writer.write(data)
        try writer.commit()
    }
}
