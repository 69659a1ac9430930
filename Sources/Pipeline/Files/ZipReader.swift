import CZLibSystem
import Foundation

/// Errors from reading or writing zip containers (.npz), naming the file and
/// what is wrong with it.
public struct ZipError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
    public var description: String { "\(file): \(reason)" }
}

/// One member of a zip archive, as its central directory describes it.
public struct ZipMember {
    public enum Method: UInt16 { case stored = 0, deflate = 8 }
    public let name: String
    public let method: Method
    public let crc32: UInt32
    public let compressedSize: Int
    public let uncompressedSize: Int
    public let localHeaderOffset: Int
}

/// A read-only zip archive (PKWARE APPNOTE): the central directory is parsed
/// up front (zip64 end records and extra fields included), members are read
/// as streams (`ZipEntryStream`) so that a multi-gigabyte member never has to
/// sit in memory. Stored and deflate members are supported.
public final class ZipReader {
    public let path: String
    public let entries: [ZipMember]
    let fd: Int32
    let fileSize: Int

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ZipError(file: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else {
            close(fd)
            throw ZipError(file: path, reason: "not a regular file")
        }
        fileSize = Int(st.st_size)
        do {
            entries = try ZipReader.readDirectory(fd: fd, size: fileSize, file: path)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    public func entry(named name: String) -> ZipMember? { entries.first { $0.name == name } }

    /// A stream over the uncompressed bytes of `entry`.
    public func stream(_ entry: ZipMember) throws -> ZipEntryStream {
        let local = try pread(at: entry.localHeaderOffset, count: 30)
        guard local.u32(0) == 0x0403_4b50 else {
            throw ZipError(file: path, reason: "member '\(entry.name)': bad local header signature")
        }
        let dataStart = entry.localHeaderOffset + 30 + Int(local.u16(26)) + Int(local.u16(28))
        guard dataStart + entry.compressedSize <= fileSize else {
            throw ZipError(file: path, reason: "member '\(entry.name)' runs past the end of the file (truncated?)")
        }
        return try ZipEntryStream(reader: self, entry: entry, dataStart: dataStart)
    }

    /// Exactly `count` bytes at `offset`, or a truncation error.
    func pread(at offset: Int, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try preadFully($0.baseAddress!, at: offset, count: count) }
        return out
    }

    func preadFully(_ dst: UnsafeMutableRawPointer, at offset: Int, count: Int) throws {
        var done = 0
        while done < count {
            let n = Foundation.pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ZipError(file: path, reason: "unexpected end of file at byte \(offset + done) (truncated?)") }
            done += n
        }
    }

    private static func readDirectory(fd: Int32, size: Int, file: String) throws -> [ZipMember] {
        func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
            guard offset >= 0, offset + count <= size else { throw ZipError(file: file, reason: "directory points outside the file (truncated?)") }
            var b = [UInt8](repeating: 0, count: count)
            let n = b.withUnsafeMutableBytes { Foundation.pread(fd, $0.baseAddress!, count, off_t(offset)) }
            guard n == count else { throw ZipError(file: file, reason: "short read at \(offset)") }
            return b
        }
        // The end-of-central-directory record sits in the last 22 + 65535 bytes.
        let tailLen = min(size, 22 + 65535)
        guard tailLen >= 22 else { throw ZipError(file: file, reason: "not a zip archive (\(size) bytes)") }
        let tail = try read(size - tailLen, tailLen)
        var eocd = -1
        var i = tailLen - 22
        while i >= 0 {
            if tail.u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw ZipError(file: file, reason: "not a zip archive (no end-of-central-directory record; truncated?)") }
        var count = Int(tail.u16(eocd + 10))
        var cdSize = Int(tail.u32(eocd + 12))
        var cdOffset = Int(tail.u32(eocd + 16))
        let eocdAbs = size - tailLen + eocd
        // Zip64: a locator right before the EOCD points at the zip64 EOCD record.
        if eocdAbs >= 20 {
            let loc = try read(eocdAbs - 20, 20)
            if loc.u32(0) == 0x0706_4b50 {
                let z64Off = Int(loc.u64(8))
                let z = try read(z64Off, 56)
                guard z.u32(0) == 0x0606_4b50 else { throw ZipError(file: file, reason: "bad zip64 end-of-central-directory record") }
                count = Int(z.u64(32))
                cdSize = Int(z.u64(40))
                cdOffset = Int(z.u64(48))
            }
        }
        guard cdSize >= 0, cdSize < 1 << 31 else { throw ZipError(file: file, reason: "implausible central directory size \(cdSize)") }
        let cd = try read(cdOffset, cdSize)
        var entries: [ZipMember] = []
        var p = 0
        for _ in 0..<count {
            guard p + 46 <= cd.count, cd.u32(p) == 0x0201_4b50 else {
                throw ZipError(file: file, reason: "corrupt central directory entry \(entries.count)")
            }
            let flags = cd.u16(p + 8)
            let methodRaw = cd.u16(p + 10)
            let crc = cd.u32(p + 16)
            var csize = Int(cd.u32(p + 20)), usize = Int(cd.u32(p + 24))
            let nameLen = Int(cd.u16(p + 28)), extraLen = Int(cd.u16(p + 30)), commentLen = Int(cd.u16(p + 32))
            var offset = Int(cd.u32(p + 42))
            guard p + 46 + nameLen + extraLen + commentLen <= cd.count else {
                throw ZipError(file: file, reason: "corrupt central directory entry \(entries.count)")
            }
            let name = String(decoding: cd[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self)
            // Zip64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in order.
            var e = p + 46 + nameLen
            let eEnd = e + extraLen
            while e + 4 <= eEnd {
                let id = cd.u16(e), len = Int(cd.u16(e + 2))
                if id == 0x0001 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { usize = Int(cd.u64(q)); q += 8 }
                    if csize == 0xFFFF_FFFF, q + 8 <= e + 4 + len { csize = Int(cd.u64(q)); q += 8 }
                    if offset == 0xFFFF_FFFF, q + 8 <= e + 4 + len { offset = Int(cd.u64(q)); q += 8 }
                }
                e += 4 + len
            }
            guard flags & 1 == 0 else { throw ZipError(file: file, reason: "member '\(name)' is encrypted") }
            guard let method = ZipMember.Method(rawValue: methodRaw) else {
                throw ZipError(file: file, reason: "member '\(name)' uses compression method \(methodRaw) (only stored and deflate are supported)")
            }
            entries.append(ZipMember(name: name, method: method, crc32: crc, compressedSize: csize,
                                    uncompressedSize: usize, localHeaderOffset: offset))
            p += 46 + nameLen + extraLen + commentLen
        }
        return entries
    }
}

/// Sequential reader of one member's uncompressed bytes; checks the CRC-32
/// once the last byte has been read.
public final class ZipEntryStream {
    let reader: ZipReader
    public let entry: ZipMember
    let dataStart: Int
    private var compressedRead = 0
    public private(set) var position = 0
    private var crc: UInt32 = 0
    private var crcVerifiable = true
    /// Heap-allocated: zlib keeps a pointer back to its z_stream, so it must not move.
    private var zs: UnsafeMutablePointer<z_stream>?
    private static let inCapacity = 1 << 20
    private var inBuf: UnsafeMutablePointer<UInt8>?

    init(reader: ZipReader, entry: ZipMember, dataStart: Int) throws {
        self.reader = reader; self.entry = entry; self.dataStart = dataStart
        if entry.method == .deflate {
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

    public var remaining: Int { entry.uncompressedSize - position }

    /// Fills exactly `count` bytes at `dst`, or throws (truncated or corrupt member).
    public func read(into dst: UnsafeMutableRawPointer, count: Int) throws {
        guard count <= remaining else {
            throw ZipError(file: reader.path, reason: "member '\(entry.name)': asked for \(count) bytes, \(remaining) left")
        }
        if count == 0 { return }
        switch entry.method {
        case .stored:
            try reader.preadFully(dst, at: dataStart + position, count: count)
        case .deflate:
            try inflate(into: dst.assumingMemoryBound(to: UInt8.self), count: count)
        }
        crc = ZipCRC.update(crc, UnsafeRawBufferPointer(start: dst, count: count))
        position += count
        if position == entry.uncompressedSize && crcVerifiable && crc != entry.crc32 {
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
        switch entry.method {
        case .stored:
            position += count
        case .deflate:
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

/// CRC-32 (the zip/zlib polynomial) over buffers of any size.
public enum ZipCRC {
    public static func update(_ crc: UInt32, _ buf: UnsafeRawBufferPointer) -> UInt32 {
        guard var p = buf.baseAddress?.assumingMemoryBound(to: Bytef.self) else { return crc }
        var left = buf.count
        var c = UInt(crc)
        while left > 0 {
            let n = min(left, 1 << 30)
            c = CZLibSystem.crc32(c, p, UInt32(n))
            p += n; left -= n
        }
        return UInt32(c)
    }
}

extension Array where Element == UInt8 {
    @inline(__always) func u16(_ i: Int) -> UInt16 { UInt16(self[i]) | UInt16(self[i + 1]) << 8 }
    @inline(__always) func u32(_ i: Int) -> UInt32 { UInt32(u16(i)) | UInt32(u16(i + 2)) << 16 }
    @inline(__always) func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) | UInt64(u32(i + 4)) << 32 }
}
