import Foundation

/// One member of a zip archive, located inside the mapped file.
public struct ZipEntry: Equatable {
    public var name: String
    /// 0 = stored, 8 = deflate, ...
    public var method: UInt16
    public var crc32: UInt32
    public var compressedSize: Int
    public var size: Int
    /// Absolute offset of the member's first data byte in the file.
    public var dataOffset: Int
}

/// The central directory of a zip archive that lies in memory (a mapped file):
/// end-of-central-directory record, its zip64 forms (archives over 4 GiB, such
/// as DiT-XL training checkpoints), and every local header checked against it.
/// Nothing is extracted: members are addressed in place.
public struct ZipDirectory {
    public let file: String
    public private(set) var entries: [ZipEntry] = []
    private var byName: [String: Int] = [:]

    public subscript(name: String) -> ZipEntry? { byName[name].map { entries[$0] } }

    /// Parses the archive at `base` (`size` bytes); errors name `file`.
    public init(file: String, base: UnsafeRawPointer, size: Int) throws {
        self.file = file
        let r = ByteReader(base: base, size: size)
        func bad(_ reason: String) -> WeightError { .malformed(file: file, reason: reason) }

        // End of central directory: 22 bytes plus a comment of up to 64 KiB, at the end.
        let eocdSig: UInt32 = 0x0605_4b50
        var eocd = -1
        if size >= 22 {
            var p = size - 22
            let lowest = max(0, size - 22 - 0xFFFF)
            while p >= lowest {
                if r.u32(p) == eocdSig, p + 22 + Int(r.u16(p + 20)) == size { eocd = p; break }
                p -= 1
            }
        }
        guard eocd >= 0 else {
            throw bad("no zip end-of-central-directory record at the end of this \(size)-byte file (truncated, or not a zip archive)")
        }
        var count = Int(r.u16(eocd + 10))
        var cdSize = Int(r.u32(eocd + 12))
        var cdOffset = Int(r.u32(eocd + 16))
        if r.u16(eocd + 4) != 0 || r.u16(eocd + 6) != 0 {
            throw bad("multi-disk zip archives are not supported")
        }
        // zip64: the locator sits right before the EOCD and points at the zip64 record.
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF || (eocd >= 20 && r.u32(eocd - 20) == 0x0706_4b50) {
            guard eocd >= 20, size >= 76, r.u32(eocd - 20) == 0x0706_4b50 else {
                throw bad("zip64 sizes without a zip64 end-of-central-directory locator")
            }
            let rec64 = r.u64(eocd - 20 + 8)
            guard rec64 <= UInt64(size - 56), r.u32(Int(rec64)) == 0x0606_4b50 else {
                throw bad("zip64 end-of-central-directory record offset \(rec64) is not valid (truncated?)")
            }
            let p = Int(rec64)
            let c64 = r.u64(p + 32), s64 = r.u64(p + 40), o64 = r.u64(p + 48)
            guard c64 < UInt64(size), s64 <= UInt64(size), o64 <= UInt64(size) else {
                throw bad("zip64 central directory fields exceed the file size (truncated?)")
            }
            count = Int(c64); cdSize = Int(s64); cdOffset = Int(o64)
        }
        guard cdOffset + cdSize <= eocd else {
            throw bad("central directory (\(cdSize) bytes at \(cdOffset)) lies outside the \(size)-byte file (truncated?)")
        }
        guard count <= cdSize / 46 || (count == 0 && cdSize == 0) else {
            throw bad("central directory claims \(count) entries in \(cdSize) bytes")
        }

        var p = cdOffset
        let cdEnd = cdOffset + cdSize
        entries.reserveCapacity(count)
        for i in 0..<count {
            guard p + 46 <= cdEnd, r.u32(p) == 0x0201_4b50 else {
                throw bad("central directory entry \(i) at \(p) is damaged")
            }
            let method = r.u16(p + 10)
            let crc = r.u32(p + 16)
            var csize = UInt64(r.u32(p + 20))
            var usize = UInt64(r.u32(p + 24))
            let nameLen = Int(r.u16(p + 28)), extraLen = Int(r.u16(p + 30)), commentLen = Int(r.u16(p + 32))
            var local = UInt64(r.u32(p + 42))
            let next = p + 46 + nameLen + extraLen + commentLen
            guard next <= cdEnd else { throw bad("central directory entry \(i) runs past the directory") }
            let name = r.string(p + 46, nameLen)
            // zip64 extended information: only the fields saturated in the fixed part, in order.
            var e = p + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = r.u16(e), len = Int(r.u16(e + 2))
                guard e + 4 + len <= extraEnd else { throw bad("entry '\(name)': damaged extra field") }
                if id == 0x0001 {
                    var q = e + 4
                    func take() throws -> UInt64 {
                        guard q + 8 <= e + 4 + len else { throw bad("entry '\(name)': short zip64 extra field") }
                        defer { q += 8 }
                        return r.u64(q)
                    }
                    if usize == 0xFFFF_FFFF { usize = try take() }
                    if csize == 0xFFFF_FFFF { csize = try take() }
                    if local == 0xFFFF_FFFF { local = try take() }
                }
                e += 4 + len
            }
            guard usize <= UInt64(size), csize <= UInt64(size), local <= UInt64(size) else {
                throw bad("entry '\(name)': sizes or offset exceed the \(size)-byte file (truncated?)")
            }
            guard method != 0 || csize == usize else {
                throw bad("entry '\(name)' is stored uncompressed but its sizes differ (\(csize) vs \(usize))")
            }
            let lh = Int(local)
            guard lh + 30 <= size, r.u32(lh) == 0x0403_4b50 else {
                throw bad("entry '\(name)': no local header at offset \(lh) (truncated or damaged)")
            }
            let lNameLen = Int(r.u16(lh + 26)), lExtraLen = Int(r.u16(lh + 28))
            guard lh + 30 + lNameLen <= size, r.string(lh + 30, lNameLen) == name else {
                throw bad("entry '\(name)': local header at \(lh) names a different member")
            }
            // Sizes in the local header must agree unless deferred to a data descriptor (flag bit 3) or zip64.
            let lFlags = r.u16(lh + 6), lc = r.u32(lh + 18), lu = r.u32(lh + 22)
            if lFlags & 0x8 == 0, lc != 0xFFFF_FFFF, lu != 0xFFFF_FFFF, UInt64(lc) != csize || UInt64(lu) != usize {
                throw bad("entry '\(name)': local header sizes \(lc)/\(lu) disagree with the central directory \(csize)/\(usize)")
            }
            let data = lh + 30 + lNameLen + lExtraLen
            guard data <= size, Int(csize) <= size - data else {
                throw bad("entry '\(name)' (\(csize) bytes at \(data)) ends past the end of the \(size)-byte file (truncated)")
            }
            guard byName[name] == nil else { throw bad("entry '\(name)' appears twice") }
            byName[name] = entries.count
            entries.append(ZipEntry(name: name, method: method, crc32: crc, compressedSize: Int(csize),
                                    size: Int(usize), dataOffset: data))
            p = next
        }
    }
}

/// Bounds-unchecked little-endian loads; callers check ranges first.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) func u32(_ o: Int) -> UInt32 {
        o + 4 <= size ? UInt32(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt32.self)) : 0
    }
    @inline(__always) func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
    func string(_ o: Int, _ n: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: base + o, count: n), as: UTF8.self)
    }
}

/// CRC-32 (IEEE, the zip checksum), slicing-by-8 (about 1 GB/s per core).
public enum CRC32 {
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    public static func checksum(_ p: UnsafeRawPointer, count: Int, seed: UInt32 = 0) -> UInt32 {
        var c = ~seed
        tables.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            var q = p, n = count
            while n >= 8 {
                let lo = UInt32(littleEndian: q.loadUnaligned(as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: q.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                q += 8; n -= 8
            }
            let b = q.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { c = t[Int((c ^ UInt32(b[i])) & 0xFF)] ^ (c >> 8) }
        }
        return ~c
    }
}
