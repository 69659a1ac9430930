import COpenSSLCrypto
import Foundation

/// SHA-256 (FIPS 180-4), streaming, through OpenSSL's libcrypto (EVP), which uses the CPU's
/// SHA extensions where present (~1-2 GB/s against ~50-150 MB/s for portable code). Used to
/// fingerprint every shard output so the coordinator can re-verify what a worker reports
/// before it records a shard done.
///
/// Non-copyable: the running state lives in one libcrypto context, so a copy would share it
/// and corrupt both digests; the compiler refuses the copy instead.
public struct SHA256: ~Copyable {
    private let context: OpaquePointer

    public init() {
        // Allocation failure of a few hundred bytes is not a recoverable input error.
        guard let c = EVP_MD_CTX_new(), EVP_DigestInit_ex(c, EVP_sha256(), nil) == 1 else {
            fatalError("libcrypto: cannot initialise SHA-256")
        }
        context = c
    }

    deinit { EVP_MD_CTX_free(context) }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let p = bytes.baseAddress, bytes.count > 0 else { return }
        _ = EVP_DigestUpdate(context, p, bytes.count)
    }

    /// The digest as 64 lowercase hex characters.
    public mutating func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = digest.withUnsafeMutableBufferPointer { EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ data: Data) -> String {
        var h = SHA256()
        h.update(data)
        return h.finalizeHex()
    }

    /// Hashes a file in 1 MiB chunks; returns (size, hex digest).
    public static func file(_ path: String) throws -> (size: Int64, sha256: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.errno(path, "cannot open") }
        defer { close(fd) }
        return try file(descriptor: fd, path: path)
    }

    /// Hashes an open file from its current offset to its end; `path` names it in errors.
    public static func file(descriptor fd: Int32, path: String) throws -> (size: Int64, sha256: String) {
        var h = SHA256()
        let chunk = 1 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buf, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError.errno(path, "read failed")
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(start: buf, count: n))
            total += Int64(n)
        }
        return (total, h.finalizeHex())
    }
}
