import XCTest
@testable import PipelineTensor

final class PoolingResizeTests: XCTestCase {
    func naivePool(_ x: [Float], h: Int, w: Int, k: Int, s: Int, p: Int, max isMax: Bool) -> [Float] {
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        var out = [Float]()
        for oy in 0..<oh { for ox in 0..<ow {
            var vals = [Float]()
            for dy in 0..<k { for dx in 0..<k {
                let y = oy * s - p + dy, xx = ox * s - p + dx
                if y >= 0 && y < h && xx >= 0 && xx < w { vals.append(x[y * w + xx]) }
            } }
            out.append(isMax ? vals.max()! : vals.reduce(0, +) / Float(vals.count))
        } }
        return out
    }

    func testPoolingFastPathsMatchDefinition() {
        for (h, w) in [(7, 9), (2, 2), (8, 8), (35, 35)] {
            let x = (0..<(2 * h * w)).map { Float(($0 * 37) % 101) / 7 - 5 }
            let out = UnsafeMutablePointer<Float>.allocate(capacity: 2 * h * w)
            defer { out.deallocate() }
            // avg 3×3 s1 p1 count_include_pad=False (fast path)
            Pooling.avgPool(x, planes: 2, height: h, width: w, kernel: 3, stride: 1, padding: 1, countIncludePad: false, out: out)
            for pl in 0..<2 {
                let want = naivePool(Array(x[(pl * h * w)..<((pl + 1) * h * w)]), h: h, w: w, k: 3, s: 1, p: 1, max: false)
                for i in 0..<want.count { XCTAssertEqual(out[pl * h * w + i], want[i], accuracy: 1e-5, "avg \(h)x\(w)") }
            }
            // max 3×3 s2 p0 (fast path) and s1 p1 (general)
            for (s, p) in [(2, 0), (1, 1)] where h >= 3 || p == 1 {
                Pooling.maxPool(x, planes: 2, height: h, width: w, kernel: 3, stride: s, padding: p, out: out)
                let oh = (h + 2 * p - 3) / s + 1, ow = (w + 2 * p - 3) / s + 1
                for pl in 0..<2 {
                    let want = naivePool(Array(x[(pl * h * w)..<((pl + 1) * h * w)]), h: h, w: w, k: 3, s: s, p: p, max: true)
                    XCTAssertEqual(Array(UnsafeBufferPointer(start: out + pl * oh * ow, count: oh * ow)), want, "max \(h)x\(w) s\(s)")
                }
            }
        }
        // count_include_pad=True divides by 9 everywhere.
        let one = [Float](repeating: 1, count: 9)
        let o = UnsafeMutablePointer<Float>.allocate(capacity: 9); defer { o.deallocate() }
        Pooling.avgPool(one, planes: 1, height: 3, width: 3, kernel: 3, stride: 1, padding: 1, countIncludePad: true, out: o)
        XCTAssertEqual(o[0], 4.0 / 9, accuracy: 1e-6); XCTAssertEqual(o[4], 1, accuracy: 1e-6)
    }

    /// 2×2 → 4×4 of [[0, 1], [2, 3]]: F.interpolate(bilinear, align_corners=False)
    /// gives rows/cols at [0, .25, .75, 1]; TF1 ResizeBilinear at [0, .5, 1, 1].
    func testBilinearConventions() {
        let src: [Float] = [0, 1, 2, 3]
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 16); defer { out.deallocate() }
        for (conv, t) in [(BilinearConvention.pytorchHalfPixel, [Float(0), 0.25, 0.75, 1]), (.tf1Legacy, [0, 0.5, 1, 1])] {
            Resize.bilinear(src, planes: 1, height: 2, width: 2, outHeight: 4, outWidth: 4, convention: conv, dst: out)
            for y in 0..<4 { for x in 0..<4 { XCTAssertEqual(out[y * 4 + x], 2 * t[y] + t[x], accuracy: 1e-6, "\(conv) \(y),\(x)") } }
        }
        // Downsampling 4 → 3 (PyTorch: src = (d + .5)·4/3 − .5 = [.1667, 1.5, 2.8333]).
        let row: [Float] = [0, 10, 20, 30]
        Resize.bilinear(row, planes: 1, height: 1, width: 4, outHeight: 1, outWidth: 3, convention: .pytorchHalfPixel, dst: out)
        XCTAssertEqual(out[0], 1.6666666, accuracy: 1e-4); XCTAssertEqual(out[1], 15, accuracy: 1e-4); XCTAssertEqual(out[2], 28.333333, accuracy: 1e-4)
        Resize.bilinear(row, planes: 1, height: 1, width: 4, outHeight: 1, outWidth: 3, convention: .tf1Legacy, dst: out)
        XCTAssertEqual(out[0], 0, accuracy: 1e-4); XCTAssertEqual(out[1], 13.333333, accuracy: 1e-4); XCTAssertEqual(out[2], 26.666666, accuracy: 1e-4)
    }
}
