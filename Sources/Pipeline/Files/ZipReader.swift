import CZLibSystem
import Foundation

/// A read-only zip archive (.npz) over a file descriptor: the central directory
/// is parsed up front by `ZipDirectory` (the project's one zip parser; zip64
/// included), members are read as streams (`ZipEntryStream`) with `pread`, so
/// a multi-gigabyte member never has to sit in memory and a file that shrinks
/// while it is read gives an error, not a SIGBUS. Stored and deflate members
/// are supported.
public final class ZipReader {
    public let path: String
    public let directory: ZipDirectory
    public var entries: [ZipEntry] { directory.entries }
    let fd: Int32
    let fileSize: Int

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: a FIFO at `path` must not block the open; it is refused below.
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw ZipError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ZipError(file: path, reason: "not a regular file")
        }
        fileSize = Int(st.st_size)
        do {
            directory = try ZipDirectory(file: path, fd: fd, size: fileSize)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    public func entry(named name: String) -> ZipEntry? { directory[name] }

    /// A stream over the uncompressed bytes of `entry`.
    public func stream(_ entry: ZipEntry) throws -> ZipEntryStream {
        guard entry.method == 0 || entry.method == 8 else {
            throw ZipError(file: path, reason: "member '\(entry.name)' uses compression method \(entry.method) (only stored and deflate are supported)")
        }
        return try ZipEntryStream(reader: self, entry: entry)
    }

    func preadFully(_ dst: UnsafeMutableRawPointer, at offset: Int, count: Int) throws {
        try ZipDirectory.preadFully(fd: fd, dst, at: offset, count: count, file: path)
    }
}

/// Sequential reader of one member's uncompressed bytes; checks the CRC-32
/// once the last byte has been read.
public final class ZipEntryStream {
    let reader: ZipReader
    public let entry: ZipEntry
    let dataStart: Int
    private var compressedRead = 0
    public private(set) var position = 0
    private var crc: UInt32 = 0
    private var crcVerifiable = true
    /// Heap-allocated: zlib keeps a pointer back to its z_stream, so it must not move.
    private var zs: UnsafeMutablePointer<z_stream>?
    private static let inCapacity = 1 << 20
    private var inBuf: UnsafeMutablePointer<UInt8>?

    init(reader: ZipReader, entry: ZipEntry) throws {
        self.reader = reader; self.entry = entry; self.dataStart = entry.dataOffset
        if entry.method == 8 {
            inBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: ZipEntryStream.inCapacity)
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            let rc = inflateInit2_(z, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else { z.deallocate(); throw ZipError(file: reader.path, reason: "zlib inflateInit failed (\(rc))") }
            zs = z
        }
    }

    deinit {
        if let zs { inflateEnd(zs); zs.deallocate() }
        inBuf?.deallocate()
    }

    public var remaining: Int { entry.size - position }

    /// Fills exactly `count` bytes at `dst`, or throws (truncated or corrupt member).
    public func read(into dst: UnsafeMutableRawPointer, count: Int) throws {
        guard count <= remaining else {
            throw ZipError(file: reader.path, reason: "member '\(entry.name)': asked for \(count) bytes, \(remaining) left")
        }
        if count == 0 { return }
        if entry.method == 0 {
            try reader.preadFully(dst, at: dataStart + position, count: count)
        } else {
            try inflate(into: dst.assumingMemoryBound(to: UInt8.self), count: count)
        }
        crc = CRC32.update(crc, UnsafeRawBufferPointer(start: dst, count: count))
        position += count
        if position == entry.size && crcVerifiable && crc != entry.crc32 {
            throw ZipError(file: reader.path, reason: "member '\(entry.name)': CRC-32 mismatch (corrupt file)")
        }
    }

    /// Moves `count` bytes forward without returning them (a stored member seeks; a
    /// deflated one inflates into scratch). The CRC-32 of a member read with skips
    /// is not checked (its skipped bytes were never seen).
    public func skip(_ count: Int) throws {
        guard count <= remaining else {
            throw ZipError(file: reader.path, reason: "member '\(entry.name)': asked to skip \(count) bytes, \(remaining) left")
        }
        if count == 0 { return }
        crcVerifiable = false
        if entry.method == 0 {
            position += count
        } else {
            let scratchSize = min(count, 1 << 20)
            let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: scratchSize)
            defer { scratch.deallocate() }
            var left = count
            while left > 0 {
                let n = min(left, scratchSize)
                try inflate(into: scratch, count: n)
                position += n
                left -= n
            }
        }
    }

    private func inflate(into dst: UnsafeMutablePointer<UInt8>, count: Int) throws {
        guard let inBuf, let z = zs else { return }
        var produced = 0
        while produced < count {
            if z.pointee.avail_in == 0 {
                let n = min(ZipEntryStream.inCapacity, entry.compressedSize - compressedRead)
                guard n > 0 else { throw ZipError(file: reader.path, reason: "member '\(entry.name)': compressed data ends early (truncated?)") }
                try reader.preadFully(inBuf, at: dataStart + compressedRead, count: n)
                compressedRead += n
                z.pointee.next_in = inBuf
                z.pointee.avail_in = UInt32(n)
            }
            let chunk = min(count - produced, 1 << 30)
            z.pointee.next_out = dst + produced
            z.pointee.avail_out = UInt32(chunk)
            let status = CZLibSystem.inflate(z, Z_NO_FLUSH)
            produced += chunk - Int(z.pointee.avail_out)
            if status == Z_STREAM_END {
                guard produced == count else { throw ZipError(file: reader.path, reason: "member '\(entry.name)': deflate stream ends early") }
                break
            }
            guard status == Z_OK || (status == Z_BUF_ERROR && z.pointee.avail_in == 0) else {
                throw ZipError(file: reader.path, reason: "member '\(entry.name)': corrupt deflate data (zlib \(status))")
            }
        }
    }
}
