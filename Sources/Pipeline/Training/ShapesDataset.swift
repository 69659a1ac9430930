import Foundation
import PipelineTensor
import PipelineImaging

/// A procedural image data set built into the project, so that training, the
/// demo and end-to-end tests need no downloads: coloured geometric shapes on a
/// coloured background, class = shape. Image `i` of seed `s` is a pure function
/// of (s, i): any subset can be regenerated anywhere.
public struct ShapesDataset {
    public enum Shape: Int, CaseIterable {
        // Alphabetical, so that the ImageFolder labels of the written PNGs
        // (sorted class-folder names) equal these raw values.
        case circle, cross, square, triangle

        public var name: String {
            switch self {
            case .circle: return "circle"
            case .cross: return "cross"
            case .square: return "square"
            case .triangle: return "triangle"
            }
        }
    }

    public static var classNames: [String] { Shape.allCases.map(\.name) }
    public static var numClasses: Int { Shape.allCases.count }

    public let seed: UInt64
    public let size: Int

    public init(seed: UInt64 = 0, size: Int = 32) {
        precondition(size >= 8, "shapes images are at least 8 px")
        self.seed = seed
        self.size = size
    }

    /// The label of image `index` (classes cycle so that every prefix is balanced).
    public func label(of index: Int) -> Int { index % Self.numClasses }

    /// Renders image `index` (4x4 supersampled edges).
    public func image(_ index: Int) -> ImageRGB8 {
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15) ^ 0x5348_4150_4553)
        let shape = Shape(rawValue: label(of: index))!
        let bg = Self.colour(&rng, dark: true)
        let fg = Self.colour(&rng, dark: false)
        let s = Double(size)
        let radius = s * (0.22 + 0.14 * rng.unit())
        let cx = s / 2 + (rng.unit() - 0.5) * (s - 2 * radius) * 0.8
        let cy = s / 2 + (rng.unit() - 0.5) * (s - 2 * radius) * 0.8
        let angle = rng.unit() * 2 * Double.pi
        var img = ImageRGB8(width: size, height: size)
        let sub = 4
        for y in 0..<size {
            for x in 0..<size {
                var covered = 0
                for sy in 0..<sub {
                    for sx in 0..<sub {
                        let px = Double(x) + (Double(sx) + 0.5) / Double(sub) - cx
                        let py = Double(y) + (Double(sy) + 0.5) / Double(sub) - cy
                        if Self.inside(shape, px, py, radius, angle) { covered += 1 }
                    }
                }
                let a = Double(covered) / Double(sub * sub)
                let o = (y * size + x) * 3
                for c in 0..<3 {
                    img.pixels[o + c] = UInt8((Double(bg[c]) * (1 - a) + Double(fg[c]) * a).rounded())
                }
            }
        }
        return img
    }

    private static func inside(_ shape: Shape, _ px: Double, _ py: Double, _ r: Double, _ angle: Double) -> Bool {
        // Rotate the sample point into the shape's frame.
        let c = cos(angle), s = sin(angle)
        let x = c * px + s * py, y = -s * px + c * py
        switch shape {
        case .circle:
            return x * x + y * y <= r * r
        case .square:
            let h = r * 0.8
            return abs(x) <= h && abs(y) <= h
        case .triangle:
            // Equilateral triangle with circumradius r, pointing up in its frame.
            for k in 0..<3 {
                let t = Double(k) * 2 * Double.pi / 3
                if x * sin(t) - y * cos(t) > r / 2 { return false }
            }
            return true
        case .cross:
            let arm = r * 0.32
            return (abs(x) <= arm && abs(y) <= r) || (abs(y) <= arm && abs(x) <= r)
        }
    }

    private static func colour(_ rng: inout SplitMix64, dark: Bool) -> [UInt8] {
        let lo = dark ? 0.0 : 0.55, hi = dark ? 0.4 : 1.0
        return (0..<3).map { _ in UInt8(((lo + (hi - lo) * rng.unit()) * 255).rounded()) }
    }

    /// Writes `count` images as PNGs in the ImageFolder layout `out/<class>/<index>.png`.
    /// Returns the paths written.
    @discardableResult
    public func write(count: Int, to out: String) throws -> [String] {
        var paths: [String] = []
        for name in Self.classNames {
            try FileManager.default.createDirectory(atPath: out + "/" + name, withIntermediateDirectories: true)
        }
        let digits = max(5, String(max(count - 1, 0)).count)
        for i in 0..<count {
            let name = Self.classNames[label(of: i)]
            let idx = String(i)
            let path = "\(out)/\(name)/\(String(repeating: "0", count: max(0, digits - idx.count)))\(idx).png"
            try PNGWriter.write(image(i), to: path)
            paths.append(path)
        }
        return paths
    }
}
