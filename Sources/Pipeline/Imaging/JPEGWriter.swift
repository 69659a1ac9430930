import CImageCodecs
import Foundation

/// libjpeg's J_COLOR_SPACE values for what a JPEG file stores.
public enum JPEGColorSpace: Int32, Equatable {
    case grayscale = 1, rgb = 2, ycbcr = 3, cmyk = 4, ycck = 5
}

/// JPEG encoding through libjpeg-turbo (used to produce test inputs of every
/// JPEG variant; the pipeline writes PNG).
public enum JPEGWriter {
    /// `pixels`: interleaved samples with `components` channels (1 gray, 3 RGB,
    /// 4 CMYK, stored as given with an Adobe marker). `colorSpace` is what the file
    /// stores (nil: libjpeg's default, YCbCr for RGB input).
    public static func encode(_ pixels: [UInt8], width: Int, height: Int, components: Int, colorSpace: JPEGColorSpace? = nil,
                              quality: Int = 90, progressive: Bool = false, subsample420: Bool = false) throws -> Data {
        guard width > 0, height > 0, width <= 65535, height <= 65535, pixels.count == width * height * components else {
            throw ImageError.invalid(file: "<jpeg>", reason: "\(pixels.count) bytes do not hold a \(width)x\(height)x\(components) image")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var count = 0
        var err = [CChar](repeating: 0, count: Int(IC_ERROR_LENGTH))
        let rc = pixels.withUnsafeBufferPointer {
            ic_jpeg_encode($0.baseAddress, UInt32(width), UInt32(height), Int32(components), colorSpace?.rawValue ?? 0, Int32(quality),
                           progressive ? 1 : 0, subsample420 ? 1 : 0, &out, &count, &err, err.count)
        }
        guard rc == 0, let bytes = out else { throw ImageError.corrupt(file: "<jpeg>", format: "JPEG", reason: ImageDecoder.message(err)) }
        defer { ic_free(bytes) }
        return Data(bytes: bytes, count: count)
    }
}
