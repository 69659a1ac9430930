import Foundation

/// A read-only memory mapping of a whole file.
public final class MappedFile {
    public let size: Int
    public let bytes: UnsafeMutablePointer<UInt8>
    private let mapped: Bool

    public init(path: String) throws {
        // O_NONBLOCK: a FIFO at `path` must not block the open; only regular files are mapped.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw WeightError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw WeightError.unreadable(file: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw WeightError.unreadable(file: path, reason: "is a directory") }
        if (st.st_mode & S_IFMT) != S_IFREG { throw WeightError.unreadable(file: path, reason: "not a regular file") }
        size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw WeightError.unreadable(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = p.assumingMemoryBound(to: UInt8.self)
        mapped = true
    }

    deinit {
        if mapped { munmap(bytes, size) } else { bytes.deallocate() }
    }
}
