import Foundation

/// Finds and overwrites fields of a small zip archive in place, for crafting
/// hostile archives from valid ones in tests. Structures are located by their
/// signature followed by the member's name (fine for the small archives tests make).
enum ZipPatch {
    static func u16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(u16(b, i)) | UInt32(u16(b, i + 2)) << 16 }
    static func put(_ b: inout [UInt8], _ i: Int, _ v: UInt64, bytes: Int) {
        for k in 0..<bytes { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
    }

    private static func find(_ b: [UInt8], signature: UInt32, nameAt: Int, _ name: String) -> Int? {
        let n = Array(name.utf8)
        var i = 0
        while i + nameAt + n.count <= b.count {
            if u32(b, i) == signature, Array(b[(i + nameAt)..<(i + nameAt + n.count)]) == n { return i }
            i += 1
        }
        return nil
    }

    /// Offset of `name`'s central directory entry.
    static func central(_ b: [UInt8], _ name: String) -> Int? { find(b, signature: 0x0201_4b50, nameAt: 46, name) }
    /// Offset of `name`'s local header.
    static func local(_ b: [UInt8], _ name: String) -> Int? { find(b, signature: 0x0403_4b50, nameAt: 30, name) }

    /// Offset of the first value in the zip64 extra field of the central entry at `p`.
    static func zip64Values(_ b: [UInt8], central p: Int) -> Int? {
        var e = p + 46 + u16(b, p + 28)
        let end = e + u16(b, p + 30)
        while e + 4 <= end {
            if u16(b, e) == 1 { return e + 4 }
            e += 4 + u16(b, e + 2)
        }
        return nil
    }

    /// Sets `name`'s compression method and uncompressed size in both its headers (32-bit fields).
    static func setMethod(_ b: inout [UInt8], _ name: String, method: Int, size: UInt32) {
        guard let c = central(b, name), let l = local(b, name) else { return }
        put(&b, c + 10, UInt64(method), bytes: 2); put(&b, l + 8, UInt64(method), bytes: 2)
        put(&b, c + 24, UInt64(size), bytes: 4); put(&b, l + 22, UInt64(size), bytes: 4)
    }
}
