import CZLibSystem
import Foundation

/// Errors from reading or writing zip containers (.npz, .pt), naming the file
/// and what is wrong with it (the member and field where one is involved).
public struct ZipError: Error, CustomStringConvertible {
    public let file: String
    public let reason: String
    public init(file: String, reason: String) { self.file = file; self.reason = reason }
    public var description: String { "\(file): \(reason)" }
}

/// One member of a zip archive, as its central directory describes it (sizes
/// already checked against the file and, for zip64, taken from the extra field).
public struct ZipEntry: Equatable {
    public var name: String
    /// 0 = stored, 8 = deflate; others are listed but cannot be read.
    public var method: UInt16
    public var crc32: UInt32
    public var compressedSize: Int
    /// The uncompressed size.
    public var size: Int
    /// Absolute offset of the member's first data byte in the file.
    public var dataOffset: Int
}

/// The one zip central-directory parser of the project (PKWARE APPNOTE), for
/// `.pt` checkpoints (over a memory mapping) and `.npz` archives (over a file
/// descriptor, `ZipReader`): the end-of-central-directory record and its zip64
/// forms (archives over 4 GiB, such as DiT-XL training checkpoints or ADM
/// reference batches), every local header checked against its entry. Nothing
/// is extracted here: members are addressed by offset.
///
/// Hostile input: every size and offset is compared with the file's size as an
/// unsigned 64-bit number before it becomes an `Int`, so a zip64 field of 2**63
/// is an error, never a negative count. A stored member's size is its
/// compressed size; a deflated member may claim at most `maxDeflateRatio` times
/// its compressed bytes (deflate's own limit), so a 682-byte archive cannot
/// declare a 16 TiB member and have a reader allocate for it.
///
/// ZIPFoundation (once declared in Package.swift, never imported) is not used:
/// `.pt` needs members served in place from a mapping, which it does not offer,
/// and streaming .npz reading/writing with zip64 is these ~600 lines
/// (`ZipReader`, `ZipWriter`) over zlib, so the dependency was removed.
public struct ZipDirectory {
    public let file: String
    public private(set) var entries: [ZipEntry] = []
    private var byName: [String: Int] = [:]

    /// Deflate's largest expansion: 258 output bytes per 2-bit match code, about 1032:1.
    public static let maxDeflateRatio: UInt64 = 1032

    public subscript(name: String) -> ZipEntry? { byName[name].map { entries[$0] } }

    /// Parses the archive that lies in memory at `base` (`size` bytes, e.g. a mapped file); errors name `file`.
    public init(file: String, base: UnsafeRawPointer, size: Int) throws {
        try self.init(file: file, size: size) { offset, count in
            Array(UnsafeRawBufferPointer(start: base + offset, count: count))
        }
    }

    /// Parses the archive open as `fd` (`size` bytes), reading only its directory and local headers.
    public init(file: String, fd: Int32, size: Int) throws {
        try self.init(file: file, size: size) { offset, count in
            var out = [UInt8](repeating: 0, count: count)
            try out.withUnsafeMutableBytes { try ZipDirectory.preadFully(fd: fd, $0.baseAddress!, at: offset, count: count, file: file) }
            return out
        }
    }

    /// `read(offset, count)` returns exactly those bytes; it is only called with ranges inside `0..<size`.
    init(file: String, size: Int, read rawRead: (Int, Int) throws -> [UInt8]) throws {
        self.file = file
        func bad(_ reason: String) -> ZipError { ZipError(file: file, reason: reason) }
        func read(_ offset: Int, _ count: Int) throws -> LEBytes {
            guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
                throw bad("\(count) bytes at offset \(offset) lie outside the \(size)-byte file (truncated?)")
            }
            return LEBytes(count == 0 ? [] : try rawRead(offset, count))
        }

        // End of central directory: 22 bytes plus a comment of up to 64 KiB, at the end.
        let tailStart = max(0, size - 22 - 0xFFFF)
        let tail = try read(tailStart, size - tailStart)
        var eocdInTail = -1
        var p = tail.count - 22
        while p >= 0 {
            if tail.u32(p) == 0x0605_4b50, p + 22 + Int(tail.u16(p + 20)) == tail.count { eocdInTail = p; break }
            p -= 1
        }
        guard eocdInTail >= 0 else {
            throw bad("no zip end-of-central-directory record at the end of this \(size)-byte file (truncated, or not a zip archive)")
        }
        let eocd = tailStart + eocdInTail
        if tail.u16(eocdInTail + 4) != 0 || tail.u16(eocdInTail + 6) != 0 {
            throw bad("multi-disk zip archives are not supported")
        }
        var count = UInt64(tail.u16(eocdInTail + 10))
        var cdSize = UInt64(tail.u32(eocdInTail + 12))
        var cdOffset = UInt64(tail.u32(eocdInTail + 16))
        // zip64: the locator sits right before the EOCD and points at the zip64 record.
        let locator = eocd >= 20 ? try read(eocd - 20, 20) : LEBytes([])
        let hasLocator = locator.u32(0) == 0x0706_4b50
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF || hasLocator {
            guard hasLocator else { throw bad("zip64 sizes without a zip64 end-of-central-directory locator") }
            let rec64 = locator.u64(8)
            guard size >= 56, rec64 <= UInt64(size - 56) else {
                throw bad("zip64 end-of-central-directory record offset \(rec64) lies outside the \(size)-byte file (truncated?)")
            }
            let rec = try read(Int(rec64), 56)
            guard rec.u32(0) == 0x0606_4b50 else { throw bad("no zip64 end-of-central-directory record at offset \(rec64)") }
            count = rec.u64(32); cdSize = rec.u64(40); cdOffset = rec.u64(48)
        }
        guard cdSize <= UInt64(eocd), cdOffset <= UInt64(eocd) - cdSize else {
            throw bad("central directory (\(cdSize) bytes at \(cdOffset)) lies outside the \(size)-byte file (truncated?)")
        }
        guard count <= cdSize / 46 else { throw bad("central directory claims \(count) entries in \(cdSize) bytes") }
        let cd = try read(Int(cdOffset), Int(cdSize))

        p = 0
        entries.reserveCapacity(Int(count))
        for i in 0..<Int(count) {
            guard p + 46 <= cd.count, cd.u32(p) == 0x0201_4b50 else {
                throw bad("central directory entry \(i) at \(Int(cdOffset) + p) is damaged")
            }
            let flags = cd.u16(p + 8), method = cd.u16(p + 10), crc = cd.u32(p + 16)
            var csize = UInt64(cd.u32(p + 20)), usize = UInt64(cd.u32(p + 24))
            let nameLen = Int(cd.u16(p + 28)), extraLen = Int(cd.u16(p + 30)), commentLen = Int(cd.u16(p + 32))
            var local = UInt64(cd.u32(p + 42))
            let next = p + 46 + nameLen + extraLen + commentLen
            guard next <= cd.count else { throw bad("central directory entry \(i) runs past the directory") }
            let name = cd.string(p + 46, nameLen)
            // zip64 extended information: only the fields saturated in the fixed part, in order.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = cd.u16(e), len = Int(cd.u16(e + 2))
                guard e + 4 + len <= extraEnd else { throw bad("member '\(name)': damaged extra field") }
                if id == 0x0001 {
                    var q = e + 4
                    func take(_ field: String) throws -> UInt64 {
                        guard q + 8 <= e + 4 + len else { throw bad("member '\(name)': zip64 extra field lacks the \(field)") }
                        defer { q += 8 }
                        return cd.u64(q)
                    }
                    if usize == 0xFFFF_FFFF { usize = try take("uncompressed size") }
                    if csize == 0xFFFF_FFFF { csize = try take("compressed size") }
                    if local == 0xFFFF_FFFF { local = try take("local header offset") }
                }
                e += 4 + len
            }
            guard flags & 1 == 0 else { throw bad("member '\(name)' is encrypted, which is not supported") }
            guard local <= UInt64(size), csize <= UInt64(size) else {
                throw bad("member '\(name)': compressed size \(csize) or offset \(local) exceeds the \(size)-byte file (truncated?)")
            }
            switch method {
            case 0:
                guard csize == usize else { throw bad("member '\(name)' is stored uncompressed but its sizes differ (\(csize) vs \(usize))") }
            case 8:
                let (limit, overflow) = (csize + 1).multipliedReportingOverflow(by: Self.maxDeflateRatio)
                guard !overflow, usize <= limit else {
                    throw bad("member '\(name)': uncompressed size \(usize) is impossible for \(csize) deflated bytes (damaged or hostile file)")
                }
            default:
                // Listed, never read; the size must still be a valid Int.
                guard usize <= UInt64(Int.max) else { throw bad("member '\(name)': uncompressed size \(usize) is not valid") }
            }
            let lh = Int(local)
            guard lh <= size - 30 else { throw bad("member '\(name)': local header offset \(lh) is past the end of the \(size)-byte file (truncated?)") }
            let header = try read(lh, 30)
            guard header.u32(0) == 0x0403_4b50 else {
                throw bad("member '\(name)': no local header at offset \(lh) (truncated or damaged)")
            }
            let lNameLen = Int(header.u16(26)), lExtraLen = Int(header.u16(28))
            guard lNameLen <= size - lh - 30, try read(lh + 30, lNameLen).string(0, lNameLen) == name else {
                throw bad("member '\(name)': local header at \(lh) names a different member")
            }
            // Sizes in the local header must agree unless deferred to a data descriptor (flag bit 3) or zip64.
            let lFlags = header.u16(6), lc = header.u32(18), lu = header.u32(22)
            if lFlags & 0x8 == 0, lc != 0xFFFF_FFFF, lu != 0xFFFF_FFFF, UInt64(lc) != csize || UInt64(lu) != usize {
                throw bad("member '\(name)': local header sizes \(lc)/\(lu) disagree with the central directory \(csize)/\(usize)")
            }
            let data = lh + 30 + lNameLen + lExtraLen
            guard data <= size, Int(csize) <= size - data else {
                throw bad("member '\(name)' (\(csize) bytes at \(data)) ends past the end of the \(size)-byte file (truncated)")
            }
            guard byName[name] == nil else { throw bad("member '\(name)' appears twice") }
            byName[name] = entries.count
            entries.append(ZipEntry(name: name, method: method, crc32: crc, compressedSize: Int(csize),
                                    size: Int(usize), dataOffset: data))
            p = next
        }
    }

    /// Exactly `count` bytes at `offset` of `fd`, retrying short reads and EINTR; a
    /// read that ends early (the file shrank) is an error naming `file`.
    static func preadFully(fd: Int32, _ dst: UnsafeMutableRawPointer, at offset: Int, count: Int, file: String) throws {
        var done = 0
        while done < count {
            let n = Foundation.pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ZipError(file: file, reason: n < 0 ? "read error at byte \(offset + done): \(String(cString: strerror(errno)))"
                    : "unexpected end of file at byte \(offset + done) (truncated?)")
            }
            done += n
        }
    }
}

/// Little-endian loads from a byte array that never read outside it (a load that
/// would is 0): the parser checks every range first, and this keeps it safe in
/// builds without bounds checks too.
struct LEBytes {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var count: Int { bytes.count }
    func u16(_ i: Int) -> UInt16 {
        guard i >= 0, i <= count - 2 else { return 0 }
        return UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8
    }
    func u32(_ i: Int) -> UInt32 {
        guard i >= 0, i <= count - 4 else { return 0 }
        return UInt32(u16(i)) | UInt32(u16(i + 2)) << 16
    }
    func u64(_ i: Int) -> UInt64 {
        guard i >= 0, i <= count - 8 else { return 0 }
        return UInt64(u32(i)) | UInt64(u32(i + 4)) << 32
    }
    func string(_ i: Int, _ n: Int) -> String {
        guard i >= 0, n >= 0, i <= count - n else { return "" }
        return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
    }
}

/// CRC-32 (IEEE, the zip checksum), zlib's `crc32` (SIMD/braided, several GB/s),
/// over buffers of any size: the one CRC-32 of the project.
public enum CRC32 {
    /// Continues `crc` (0 to start) over `buf`.
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

    public static func checksum(_ p: UnsafeRawPointer, count: Int, seed: UInt32 = 0) -> UInt32 {
        update(seed, UnsafeRawBufferPointer(start: p, count: count))
    }
}
