import Foundation

/// Errors from reading, decoding, transforming or writing images. Each names the
/// file it concerns.
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file cannot be opened or read.
    case unreadable(file: String, reason: String)
    /// A zero-byte file.
    case empty(file: String)
    /// Neither the PNG nor the JPEG signature (detection is by content, not suffix).
    case unknownFormat(file: String)
    /// The header announces more pixels than the decode limits allow.
    case tooLarge(file: String, width: Int, height: Int, limit: String)
    /// The codec rejected the data (corrupt or truncated file, unsupported variant).
    case corrupt(file: String, format: String, reason: String)
    /// Invalid arguments to an image operation.
    case invalid(file: String, reason: String)
    /// Writing failed.
    case unwritable(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(f, r): return "\(f): cannot read image: \(r)"
        case let .empty(f): return "\(f): empty file (0 bytes), not an image"
        case let .unknownFormat(f): return "\(f): not a PNG or JPEG file (unrecognised signature)"
        case let .tooLarge(f, w, h, l): return "\(f): image is \(w)x\(h), over the decode limit (\(l))"
        case let .corrupt(f, fmt, r): return "\(f): corrupt or unsupported \(fmt): \(r)"
        case let .invalid(f, r): return "\(f): \(r)"
        case let .unwritable(f, r): return "\(f): cannot write image: \(r)"
        }
    }
}
