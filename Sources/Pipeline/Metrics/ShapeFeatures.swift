import Foundation
import PipelineImaging

/// Colour-, position-, size- and rotation-invariant descriptors of the one foreground object
/// of an image (the procedural shapes set: one shape on a plain background), for the shape
/// classifier.
///
/// 1. The background colour is the per-channel median of the border pixels; each pixel's
///    foreground weight is its colour distance to it over the mean of the largest 2% of
///    distances (the object's own contrast), ramped from 0 at 1/4 of that contrast to 1 at 3/4:
///    a soft mask m. The dead zone matters for generated images: their backgrounds carry a few
///    levels of noise that a plain ratio would turn into hundreds of small weights far from the
///    centroid, which dominate the higher moments (|z|^k) and turned clean squares and crosses
///    into "triangles"; real images have exactly flat backgrounds.
/// 2. On m: the area A and centroid, the complex central moments
///    c_pq = Σ m·(z − z̄)^p·conj(z − z̄)^q, whose moduli are rotation invariant, normalised by
///    A^((p+q)/2 + 1) (scale invariant): |c20| (elongation), |c30|, |c21| (3-fold: triangles),
///    |c40|, |c31| (4-fold: squares, crosses), c22, |c50|, |c60|.
/// 3. The radial profile r(θ) at 64 angles (the farthest point with m ≥ 1/2 along each ray
///    from the centroid, bilinear, 1/4 px steps): A/(π·mean r²), A/(π·max r²), std/mean,
///    min/max and the moduli of its DFT harmonics 1…8 over the mean (rotation only shifts θ).
///
/// An empty image (no colour contrast) gives all zeros.
public enum ShapeFeatures {
    public static let count = 20
    static let angles = 64

    public static func of(_ image: ImageRGB8) -> [Double] {
        let w = image.width, h = image.height, px = image.pixels
        guard w >= 4, h >= 4 else { return [Double](repeating: 0, count: count) }
        // Background: median of the border, per channel.
        var border: [[Double]] = [[], [], []]
        for y in 0..<h {
            for x in 0..<w where y == 0 || y == h - 1 || x == 0 || x == w - 1 {
                for c in 0..<3 { border[c].append(Double(px[(y * w + x) * 3 + c])) }
            }
        }
        let bg = border.map { b -> Double in let s = b.sorted(); return s[s.count / 2] }
        var dist = [Double](repeating: 0, count: w * h)
        for i in 0..<(w * h) {
            var s = 0.0
            for c in 0..<3 { let d = Double(px[i * 3 + c]) - bg[c]; s += d * d }
            dist[i] = s.squareRoot()
        }
        let top = dist.sorted(by: >).prefix(max(1, w * h / 50))
        let ref = top.reduce(0, +) / Double(top.count)
        guard ref > 8 else { return [Double](repeating: 0, count: count) }  // < 8/255 contrast: empty
        let m = dist.map { min(max(($0 / ref - 0.25) * 2, 0), 1) }
        var area = 0.0, sx = 0.0, sy = 0.0
        for y in 0..<h {
            for x in 0..<w {
                let v = m[y * w + x]
                area += v; sx += v * Double(x); sy += v * Double(y)
            }
        }
        let cx = sx / area, cy = sy / area
        // Complex central moments up to order 6.
        func moment(_ p: Int, _ q: Int) -> Double {
            var re = 0.0, im = 0.0
            for y in 0..<h {
                for x in 0..<w {
                    let v = m[y * w + x]
                    if v == 0 { continue }
                    let zr = Double(x) - cx, zi = Double(y) - cy
                    // (zr + i zi)^p (zr − i zi)^q = |z|^(2q) z^(p−q) for p ≥ q.
                    let r2 = zr * zr + zi * zi
                    var ar = 1.0, ai = 0.0
                    for _ in 0..<(p - q) { (ar, ai) = (ar * zr - ai * zi, ar * zi + ai * zr) }
                    let mag = Foundation.pow(r2, Double(q))
                    re += v * mag * ar; im += v * mag * ai
                }
            }
            let norm = Foundation.pow(area, Double(p + q) / 2 + 1)
            return (re * re + im * im).squareRoot() / norm
        }
        var f: [Double] = [moment(2, 0), moment(3, 0), moment(2, 1), moment(4, 0), moment(3, 1),
                           moment(2, 2), moment(5, 0), moment(6, 0)]
        // Radial profile.
        func sample(_ x: Double, _ y: Double) -> Double {
            guard x >= 0, y >= 0, x <= Double(w - 1), y <= Double(h - 1) else { return 0 }
            let x0 = min(Int(x), w - 2), y0 = min(Int(y), h - 2)
            let fx = x - Double(x0), fy = y - Double(y0)
            let a = m[y0 * w + x0], b = m[y0 * w + x0 + 1], c = m[(y0 + 1) * w + x0], d = m[(y0 + 1) * w + x0 + 1]
            return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
        }
        let reach = Double(max(w, h))
        var r = [Double](repeating: 0, count: angles)
        for k in 0..<angles {
            let th = 2 * Double.pi * Double(k) / Double(angles), dx = cos(th), dy = sin(th)
            var s = 0.0, last = 0.0
            while s < reach {
                if sample(cx + s * dx, cy + s * dy) >= 0.5 { last = s }
                s += 0.25
            }
            r[k] = last
        }
        let mean = r.reduce(0, +) / Double(angles)
        guard mean > 0 else { return f + [Double](repeating: 0, count: count - f.count) }
        let maxR = r.max()!, minR = r.min()!
        let variance = r.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(angles)
        f += [area / (Double.pi * mean * mean), area / (Double.pi * maxR * maxR), variance.squareRoot() / mean, minR / maxR]
        for harmonic in 1...8 {
            var re = 0.0, im = 0.0
            for k in 0..<angles {
                let th = 2 * Double.pi * Double(harmonic * k) / Double(angles)
                re += r[k] * cos(th); im -= r[k] * sin(th)
            }
            f.append((re * re + im * im).squareRoot() / (Double(angles) * mean))
        }
        return f
    }
}
