import Foundation

/// An 8-bit RGB image: `height` rows of `width` pixels, channels interleaved
/// (HWC, the layout of `numpy.array(pil_image)` for an RGB image).
public struct ImageRGB8: Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// Wraps `pixels` (HWC, `3 * width * height` bytes).
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, pixels.count == width * height * 3 else {
            throw ImageError.invalid(file: "<memory>", reason: "\(pixels.count) bytes do not hold a \(width)x\(height) RGB image")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        precondition(width > 0 && height > 0, "ImageRGB8: dimensions must be positive")
        self.width = width
        self.height = height
        self.pixels = [UInt8](repeating: 0, count: width * height * 3)
    }

    /// The shape of `pixels` as an array: [height, width, 3].
    public var shape: [Int] { [height, width, 3] }

    public subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let o = (y * width + x) * 3
        return (pixels[o], pixels[o + 1], pixels[o + 2])
    }

    /// The rectangle at (`x`, `y`) of `w` x `h` pixels (numpy slicing `arr[y:y+h, x:x+w]`).
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) throws -> ImageRGB8 {
        guard x >= 0, y >= 0, w > 0, h > 0, x + w <= width, y + h <= height else {
            throw ImageError.invalid(file: "<memory>", reason: "crop \(w)x\(h) at (\(x), \(y)) lies outside a \(width)x\(height) image")
        }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<h {
                    let s = src.baseAddress! + ((y + r) * width + x) * 3
                    (dst.baseAddress! + r * w * 3).update(from: s, count: w * 3)
                }
            }
        }
        return try ImageRGB8(width: w, height: h, pixels: out)
    }

    /// The mirror image left to right (`arr[:, ::-1]`).
    public func flippedHorizontally() -> ImageRGB8 {
        var out = pixels
        let w = width
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for r in 0..<height {
                    let s = src.baseAddress! + r * w * 3
                    let d = dst.baseAddress! + r * w * 3
                    for c in 0..<w {
                        let from = s + (w - 1 - c) * 3
                        d[c * 3] = from[0]; d[c * 3 + 1] = from[1]; d[c * 3 + 2] = from[2]
                    }
                }
            }
        }
        // Safe: same dimensions and byte count.
        return ImageRGB8(uncheckedWidth: width, height: height, pixels: out)
    }

    init(uncheckedWidth width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
