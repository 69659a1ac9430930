import CZLibSystem
import Foundation

/// Writes a zip archive member by member, streaming: a member is opened, its
/// bytes appended in chunks of any size (CRC-32 and, for deflate, compression
/// computed as they arrive), then closed, which patches the local header with
/// the final CRC and sizes. `finish()` writes the central directory (zip64
/// records where a size or offset passes 4 GiB) and commits the file through
/// `AtomicFileWriter`, so readers never see a half-written archive.
public final class ZipWriter {
    public enum Compression { case stored, deflate(level: Int32) }

    public let path: String
    private let file: AtomicFileWriter
    private var offset = 0
    private var central: [(name: [UInt8], method: UInt16, crc: UInt32, csize: Int, usize: Int, offset: Int)] = []
    private var current: Member?
    private var finished = false
    private var outBuf: UnsafeMutablePointer<UInt8>
    private static let outCapacity = 1 << 20

    private struct Member {
        var name: [UInt8]
        var method: UInt16
        var headerOffset: Int
        var crc: UInt32 = 0
        var usize = 0
        var csize = 0
        var zip64: Bool
        /// Heap-allocated: zlib keeps a pointer back to its z_stream, so it must not move.
        var z: UnsafeMutablePointer<z_stream>?
    }

    /// Writes zip64 records even for small members (as numpy's `force_zip64`); for tests and tools that require them.
    public let forceZip64: Bool

    public init(path: String, forceZip64: Bool = false) throws {
        self.path = path
        self.forceZip64 = forceZip64
        file = try AtomicFileWriter(path: path)
        outBuf = UnsafeMutablePointer<UInt8>.allocate(capacity: ZipWriter.outCapacity)
    }

    deinit {
        if let z = current?.z { deflateEnd(z); z.deallocate() }
        outBuf.deallocate()
        if !finished { file.abandon() }
    }

    /// Opens member `name`. `expectedSize` (the uncompressed size, when known)
    /// decides whether the local header carries zip64 fields.
    public func begin(_ name: String, compression: Compression = .stored, expectedSize: Int? = nil) throws {
        guard current == nil, !finished else { throw ZipError(file: path, reason: "begin('\(name)') while another member is open") }
        let nameBytes = Array(name.utf8)
        // Without a known size, reserve zip64 fields so that any size can be patched in.
        let zip64 = forceZip64 || (expectedSize ?? Int.max) >= 0xFFFF_0000
        var m = Member(name: nameBytes, method: 0, headerOffset: offset, zip64: zip64)
        if case let .deflate(level) = compression {
            m.method = 8
            let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            z.initialize(to: z_stream())
            let rc = deflateInit2_(z, level, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard rc == Z_OK else { z.deallocate(); throw ZipError(file: path, reason: "zlib deflateInit failed (\(rc))") }
            m.z = z
        }
        current = m
        try writeAll(localHeader(m))
    }

    /// Appends uncompressed bytes to the open member.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard var m = current else { throw ZipError(file: path, reason: "append with no open member") }
        defer { current = m }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        m.crc = CRC32.update(m.crc, bytes)
        m.usize += bytes.count
        if m.method == 0 {
            try writeAll(UnsafeRawBufferPointer(start: base, count: bytes.count))
            m.csize += bytes.count
        } else {
            var left = bytes.count
            var p = base.assumingMemoryBound(to: UInt8.self)
            guard let z = m.z else { return }
            while left > 0 {
                let n = min(left, 1 << 30)
                z.pointee.next_in = UnsafeMutablePointer(mutating: p)
                z.pointee.avail_in = UInt32(n)
                m.csize += try pump(z, flush: Z_NO_FLUSH)
                p += n; left -= n
            }
        }
    }

    public func append(_ data: Data) throws {
        try data.withUnsafeBytes { try append($0) }
    }

    /// Closes the open member and patches its local header.
    public func end() throws {
        guard var m = current else { throw ZipError(file: path, reason: "end with no open member") }
        if let z = m.z {
            z.pointee.next_in = nil
            z.pointee.avail_in = 0
            m.csize += try pump(z, flush: Z_FINISH)
            deflateEnd(z)
            z.deallocate()
            m.z = nil
        }
        current = nil
        if !m.zip64 && (m.usize >= 0xFFFF_FFFF || m.csize >= 0xFFFF_FFFF) {
            throw ZipError(file: path, reason: "member '\(String(decoding: m.name, as: UTF8.self))' outgrew its declared size")
        }
        let header = localHeader(m)
        try header.withUnsafeBytes { try file.write($0, at: m.headerOffset) }
        central.append((m.name, m.method, m.crc, m.csize, m.usize, m.headerOffset))
    }

    /// Writes the central directory, fsyncs, and renames into place.
    public func finish() throws {
        guard current == nil else { throw ZipError(file: path, reason: "finish with an open member") }
        let cdStart = offset
        var cd = [UInt8]()
        for e in central {
            let big = forceZip64 || e.usize >= 0xFFFF_FFFF || e.csize >= 0xFFFF_FFFF || e.offset >= 0xFFFF_FFFF
            var extra = [UInt8]()
            if big {
                extra.le16(0x0001); extra.le16(24)
                extra.le64(e.usize); extra.le64(e.csize); extra.le64(e.offset)
            }
            cd.le32(0x0201_4b50)
            cd.le16(big ? 45 : 20); cd.le16(big ? 45 : 20)
            cd.le16(0); cd.le16(e.method)
            cd.le16(0); cd.le16(0x21) // 1980-01-01 00:00, as numpy writes
            cd.le32(Int(e.crc))
            cd.le32(big ? 0xFFFF_FFFF : e.csize); cd.le32(big ? 0xFFFF_FFFF : e.usize)
            cd.le16(e.name.count); cd.le16(extra.count); cd.le16(0)
            cd.le16(0); cd.le16(0); cd.le32(0o600 << 16)
            cd.le32(big ? 0xFFFF_FFFF : e.offset)
            cd.append(contentsOf: e.name)
            cd.append(contentsOf: extra)
        }
        try writeAll(cd)
        let cdSize = cd.count
        var tail = [UInt8]()
        let needs64 = forceZip64 || cdStart >= 0xFFFF_FFFF || central.count >= 0xFFFF || offset >= 0xFFFF_FFFF
        if needs64 {
            let z64 = offset
            tail.le32(0x0606_4b50); tail.le64(44); tail.le16(45); tail.le16(45)
            tail.le32(0); tail.le32(0); tail.le64(central.count); tail.le64(central.count)
            tail.le64(cdSize); tail.le64(cdStart)
            tail.le32(0x0706_4b50); tail.le32(0); tail.le64(z64); tail.le32(1)
        }
        tail.le32(0x0605_4b50); tail.le16(0); tail.le16(0)
        tail.le16(min(central.count, 0xFFFF)); tail.le16(min(central.count, 0xFFFF))
        tail.le32(min(cdSize, 0xFFFF_FFFF)); tail.le32(min(cdStart, 0xFFFF_FFFF)); tail.le16(0)
        try writeAll(tail)
        finished = true
        try file.commit()
    }

    private func localHeader(_ m: Member) -> [UInt8] {
        var h = [UInt8]()
        h.le32(0x0403_4b50)
        h.le16(m.zip64 ? 45 : 20); h.le16(0); h.le16(m.method)
        h.le16(0); h.le16(0x21)
        h.le32(Int(m.crc))
        if m.zip64 {
            h.le32(0xFFFF_FFFF); h.le32(0xFFFF_FFFF)
        } else {
            h.le32(m.csize); h.le32(m.usize)
        }
        h.le16(m.name.count); h.le16(m.zip64 ? 20 : 0)
        h.append(contentsOf: m.name)
        if m.zip64 { h.le16(0x0001); h.le16(16); h.le64(m.usize); h.le64(m.csize) }
        return h
    }

    /// Runs deflate until it has consumed its input (or finished); returns bytes written.
    private func pump(_ z: UnsafeMutablePointer<z_stream>, flush: Int32) throws -> Int {
        var written = 0
        while true {
            z.pointee.next_out = outBuf
            z.pointee.avail_out = UInt32(ZipWriter.outCapacity)
            let rc = deflate(z, flush)
            guard rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR else {
                throw ZipError(file: path, reason: "zlib deflate failed (\(rc))")
            }
            let n = ZipWriter.outCapacity - Int(z.pointee.avail_out)
            if n > 0 { try writeAll(UnsafeRawBufferPointer(start: outBuf, count: n)); written += n }
            if flush == Z_FINISH {
                if rc == Z_STREAM_END { break }
            } else if z.pointee.avail_in == 0 && z.pointee.avail_out != 0 { break }
        }
        return written
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws {
        try file.write(raw)
        offset += raw.count
    }
}

extension Array where Element == UInt8 {
    mutating func le16(_ v: Int) { append(UInt8(v & 0xFF)); append(UInt8((v >> 8) & 0xFF)) }
    mutating func le16(_ v: UInt16) { le16(Int(v)) }
    mutating func le32(_ v: Int) { le16(v & 0xFFFF); le16((v >> 16) & 0xFFFF) }
    mutating func le64(_ v: Int) { le32(v & 0xFFFF_FFFF); le32((v >> 32) & 0xFFFF_FFFF) }
}
