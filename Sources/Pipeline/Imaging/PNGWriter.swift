import CImageCodecs
import Foundation
import PipelineFiles

/// PNG encoding through libpng, and atomic writes of RGB images.
public enum PNGWriter {
    /// The PNG file of an 8-bit RGB image. `compressionLevel` is zlib's 0...9
    /// (Pillow's default is zlib's default, 6).
    public static func encode(_ image: ImageRGB8, compressionLevel: Int = 6) throws -> Data {
        try image.pixels.withUnsafeBytes { raw in
            try encodeRows(raw, stride: image.width * 3, width: image.width, height: image.height,
                           bitDepth: 8, colorType: 2, compressionLevel: compressionLevel, name: "<png>")
        }
    }

    /// Writes `image` to `path` crash-safely: a temporary file in the same folder,
    /// fsync, rename.
    public static func write(_ image: ImageRGB8, to path: String, compressionLevel: Int = 6) throws {
        let data: Data
        do {
            data = try encode(image, compressionLevel: compressionLevel)
        } catch let e as ImageError {
            throw ImageError.unwritable(file: path, reason: e.description)
        }
        do {
            try AtomicFile.write(data, to: path)
        } catch let e as WeightError {
            throw ImageError.unwritable(file: path, reason: e.description)
        }
    }

    /// Any PNG: `rows` laid out as PNG stores them (big-endian 16-bit samples,
    /// sub-byte pixels packed from the high bit), `stride` bytes apart; colour type
    /// 0 gray, 2 RGB, 3 palette (`palette` RGB triples), 4 gray+alpha, 6 RGBA;
    /// `transparency` is the raw tRNS payload.
    public static func encodeRows(_ rows: UnsafeRawBufferPointer, stride: Int, width: Int, height: Int,
                                  bitDepth: Int, colorType: Int, palette: [UInt8] = [], transparency: [UInt8] = [],
                                  interlaced: Bool = false, compressionLevel: Int = 6, name: String) throws -> Data {
        guard width > 0, height > 0, width <= 0x7fff_ffff, height <= 0x7fff_ffff, rows.count >= stride * height,
              let base = rows.baseAddress else {
            throw ImageError.invalid(file: name, reason: "PNG rows do not hold a \(width)x\(height) image")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var count = 0
        var err = [CChar](repeating: 0, count: Int(IC_ERROR_LENGTH))
        let rc = palette.withUnsafeBufferPointer { pal in
            transparency.withUnsafeBufferPointer { trns in
                ic_png_encode(base.assumingMemoryBound(to: UInt8.self), stride, UInt32(width), UInt32(height),
                              Int32(bitDepth), Int32(colorType), pal.baseAddress, Int32(palette.count / 3),
                              trns.baseAddress, Int32(transparency.count), interlaced ? 1 : 0, Int32(compressionLevel),
                              &out, &count, &err, err.count)
            }
        }
        guard rc == 0, let bytes = out else { throw ImageError.corrupt(file: name, format: "PNG", reason: ImageDecoder.message(err)) }
        defer { ic_free(bytes) }
        return Data(bytes: bytes, count: count)
    }
}
