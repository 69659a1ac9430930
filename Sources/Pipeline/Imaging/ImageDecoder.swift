import CImageCodecs
import Foundation
import PipelineFiles

/// Image container formats, recognised by their signature (never by file suffix).
public enum ImageFormat: String, Equatable {
    case png = "PNG"
    case jpeg = "JPEG"

    /// PNG: the 8-byte signature 89 50 4E 47 0D 0A 1A 0A; JPEG: SOI followed by a marker (FF D8 FF).
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> ImageFormat? {
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if bytes.count >= 8, png.indices.allSatisfy({ bytes[$0] == png[$0] }) { return .png }
        if bytes.count >= 3, bytes[0] == 0xFF, bytes[1] == 0xD8, bytes[2] == 0xFF { return .jpeg }
        return nil
    }
}

/// Bounds checked against the header before any pixel buffer is allocated.
public struct ImageDecodeLimits: Equatable, Sendable {
    /// Largest width or height accepted.
    public var maxDimension: Int
    /// Largest width x height accepted.
    public var maxPixels: Int

    public init(maxDimension: Int = 65535, maxPixels: Int = ImageDecodeLimits.pillowBombLimit) {
        self.maxDimension = maxDimension
        self.maxPixels = maxPixels
    }

    /// Pillow's `DecompressionBombError` threshold, 2 x `Image.MAX_IMAGE_PIXELS`
    /// (2 x 89,478,485): images Pillow refuses to open are refused here too.
    public static let pillowBombLimit = 2 * 89_478_485

    /// 65535 per side (the PNG/JPEG practical maximum) and Pillow's bomb limit
    /// (178,956,970 pixels, 512 MiB of RGB).
    public static let standard = ImageDecodeLimits()

    func check(width: Int, height: Int, file: String) throws {
        if width > maxDimension || height > maxDimension {
            throw ImageError.tooLarge(file: file, width: width, height: height, limit: "at most \(maxDimension) pixels per side")
        }
        if width * height > maxPixels {
            throw ImageError.tooLarge(file: file, width: width, height: height, limit: "at most \(maxPixels) pixels")
        }
    }
}

/// What an image file's header says.
public struct ImageHeader: Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// PNG: the bit depth; JPEG: the sample precision.
    public var bitDepth: Int
    /// PNG colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA); -1 for JPEG.
    public var pngColorType: Int
    /// Number of colour components (JPEG) or channels (PNG).
    public var components: Int
    public var interlaced: Bool
    public var progressive: Bool
    /// JPEG: the colour space libjpeg detected from the markers.
    public var jpegColorSpace: JPEGColorSpace?
}

/// Decodes PNG and JPEG files to RGB as Pillow's `Image.open(path).convert("RGB")`
/// does (alpha and transparency dropped, never composited; 16-bit gray clipped at
/// 255, other 16-bit modes reduced to their high byte; CMYK JPEGs read as Adobe's
/// inverted CMYK). The mapping of each mode lives in Sources/CImageCodecs.
public enum ImageDecoder {
    /// Decodes the file at `path`.
    public static func decode(path: String, limits: ImageDecodeLimits = .standard) throws -> ImageRGB8 {
        let file = try map(path)
        return try decode(UnsafeRawBufferPointer(start: file.bytes, count: file.size), name: path, limits: limits)
    }

    /// Decodes an in-memory file; `name` is used in errors.
    public static func decode(data: Data, name: String, limits: ImageDecodeLimits = .standard) throws -> ImageRGB8 {
        try data.withUnsafeBytes { try decode($0, name: name, limits: limits) }
    }

    /// Reads only the header of the file at `path`.
    public static func header(path: String) throws -> ImageHeader {
        let file = try map(path)
        return try header(UnsafeRawBufferPointer(start: file.bytes, count: file.size), name: path)
    }

    public static func header(_ bytes: UnsafeRawBufferPointer, name: String) throws -> ImageHeader {
        guard bytes.count > 0, let base = bytes.baseAddress else { throw ImageError.empty(file: name) }
        guard let format = ImageFormat.detect(bytes) else { throw ImageError.unknownFormat(file: name) }
        var info = ic_image_info()
        var err = [CChar](repeating: 0, count: Int(IC_ERROR_LENGTH))
        let p = base.assumingMemoryBound(to: UInt8.self)
        let rc: Int32 = switch format {
        case .png: ic_png_info(p, bytes.count, &info, &err, err.count)
        case .jpeg: ic_jpeg_info(p, bytes.count, &info, &err, err.count)
        }
        guard rc == 0 else { throw ImageError.corrupt(file: name, format: format.rawValue, reason: message(err)) }
        return ImageHeader(format: format, width: Int(info.width), height: Int(info.height), bitDepth: Int(info.bit_depth),
                           pngColorType: format == .png ? Int(info.color_type) : -1, components: Int(info.components),
                           interlaced: info.interlaced != 0, progressive: info.progressive != 0,
                           jpegColorSpace: format == .jpeg ? JPEGColorSpace(rawValue: info.color_space) : nil)
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String, limits: ImageDecodeLimits = .standard) throws -> ImageRGB8 {
        let h = try header(bytes, name: name)
        guard h.width > 0, h.height > 0 else {
            throw ImageError.corrupt(file: name, format: h.format.rawValue, reason: "image has no pixels (\(h.width)x\(h.height))")
        }
        try limits.check(width: h.width, height: h.height, file: name)
        var pixels = [UInt8](repeating: 0, count: h.width * h.height * 3)
        var err = [CChar](repeating: 0, count: Int(IC_ERROR_LENGTH))
        let src = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let rc: Int32 = pixels.withUnsafeMutableBufferPointer { out in
            switch h.format {
            case .png: return ic_png_decode_rgb8(src, bytes.count, out.baseAddress, out.count, &err, err.count)
            case .jpeg: return ic_jpeg_decode_rgb8(src, bytes.count, out.baseAddress, out.count, &err, err.count)
            }
        }
        guard rc == 0 else { throw ImageError.corrupt(file: name, format: h.format.rawValue, reason: message(err)) }
        return ImageRGB8(uncheckedWidth: h.width, height: h.height, pixels: pixels)
    }

    static func map(_ path: String) throws -> MappedFile {
        do {
            return try MappedFile(path: path)
        } catch let e as WeightError {
            if case let .unreadable(_, reason) = e { throw ImageError.unreadable(file: path, reason: reason) }
            throw ImageError.unreadable(file: path, reason: e.description)
        }
    }

    static func message(_ err: [CChar]) -> String {
        let s = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return s.isEmpty ? "decoder failed" : s
    }
}
