import Foundation

/// Bilinear image resizing conventions whose numbers differ.
public enum BilinearConvention: String, Codable, CaseIterable {
    /// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)`:
    /// src = (dst + 0.5) · in/out − 0.5, clamped at 0 (pytorch-fid).
    case pytorchHalfPixel = "torch-bilinear"
    /// TensorFlow 1's `ResizeBilinear` (align_corners=False, half_pixel_centers=False):
    /// src = dst · in/out (the graph ADM's evaluator runs).
    case tf1Legacy = "tf1-resize-bilinear"
}

public enum Resize {
    /// Per output index: the two source indices and the weight of the second.
    struct Taps {
        var i0: [Int], i1: [Int], l1: [Float]
    }

    static func taps(input: Int, output: Int, convention: BilinearConvention) -> Taps {
        var t = Taps(i0: [Int](repeating: 0, count: output), i1: [Int](repeating: 0, count: output),
                     l1: [Float](repeating: 0, count: output))
        // Both frameworks compute the scale and the source coordinate in float32.
        let scale = Float(input) / Float(output)
        for d in 0..<output {
            let src: Float
            switch convention {
            case .pytorchHalfPixel: src = max(scale * (Float(d) + 0.5) - 0.5, 0)
            case .tf1Legacy: src = Float(d) * scale
            }
            let i0 = min(Int(src.rounded(.down)), input - 1)
            t.i0[d] = i0
            t.i1[d] = min(i0 + 1, input - 1)
            t.l1[d] = src - Float(i0)
        }
        return t
    }

    /// Resizes `planes` planes of h×w to oh×ow. Plane `p` is read at
    /// `src + srcPlane(p)·h·w` and written at `dst + dstPlane(p)·oh·ow`, then
    /// mapped through `v · scale + shift` (fused normalisation).
    public static func bilinear(_ src: UnsafePointer<Float>, planes: Int, height h: Int, width w: Int,
                                outHeight oh: Int, outWidth ow: Int, convention: BilinearConvention,
                                scale: Float = 1, shift: Float = 0,
                                dst: UnsafeMutablePointer<Float>, dstPlane: (Int) -> Int = { $0 }) {
        let ty = taps(input: h, output: oh, convention: convention)
        let tx = taps(input: w, output: ow, convention: convention)
        let identity = h == oh && w == ow
        parallelFor(planes, grain: 1) { pa, pb in
          for p in pa..<pb {
            let s = src + p * h * w
            let d = dst + dstPlane(p) * oh * ow
            if identity {
                for i in 0..<(oh * ow) { d[i] = s[i] * scale + shift }
                continue
            }
            for oy in 0..<oh {
                let r0 = s + ty.i0[oy] * w, r1 = s + ty.i1[oy] * w
                let ly1 = ty.l1[oy], ly0 = 1 - ly1
                let drow = d + oy * ow
                for ox in 0..<ow {
                    let a = tx.i0[ox], b = tx.i1[ox]
                    let lx1 = tx.l1[ox], lx0 = 1 - lx1
                    let v: Float
                    switch convention {
                    case .pytorchHalfPixel:
                        // ATen's CPU kernel: h0λ·(w0λ·x00 + w1λ·x01) + h1λ·(w0λ·x10 + w1λ·x11).
                        v = ly0 * (lx0 * r0[a] + lx1 * r0[b]) + ly1 * (lx0 * r1[a] + lx1 * r1[b])
                    case .tf1Legacy:
                        // TF1: top + (bottom − top)·y_lerp, each row top_left + (top_right − top_left)·x_lerp.
                        let top = r0[a] + (r0[b] - r0[a]) * lx1
                        let bottom = r1[a] + (r1[b] - r1[a]) * lx1
                        v = top + (bottom - top) * ly1
                    }
                    drow[ox] = v * scale + shift
                }
            }
          }
        }
    }
}
