import Foundation

/// Pillow's resampling filters (libImaging/Resample.c), with their supports.
public enum ResampleFilter: String, CaseIterable {
    case box, bilinear, hamming, bicubic, lanczos

    /// Half-width of the filter at scale 1.
    public var support: Double {
        switch self {
        case .box: return 0.5
        case .bilinear, .hamming: return 1.0
        case .bicubic: return 2.0
        case .lanczos: return 3.0
        }
    }

    /// The filter kernel, written with Pillow's operation order so every
    /// coefficient is bit-identical (no FMA contraction in Swift).
    @inline(__always)
    public func weight(_ x0: Double) -> Double {
        switch self {
        case .box:
            // Half-open on the left: (-0.5, 0.5].
            return (x0 > -0.5 && x0 <= 0.5) ? 1.0 : 0.0
        case .bilinear:
            let x = abs(x0)
            return x < 1.0 ? 1.0 - x : 0.0
        case .hamming:
            let x = abs(x0)
            if x == 0.0 { return 1.0 }
            if x >= 1.0 { return 0.0 }
            let px = x * Double.pi
            // Pillow writes the Hamming constants as float literals (0.54f, 0.46f).
            return sin(px) / px * (Double(Float(0.54)) + Double(Float(0.46)) * cos(px))
        case .bicubic:
            // Keys' cubic convolution with a = -0.5.
            let a = -0.5
            let x = abs(x0)
            if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
            if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0.0
        case .lanczos:
            if -3.0 <= x0 && x0 < 3.0 { return Self.sinc(x0) * Self.sinc(x0 / 3) }
            return 0.0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0.0 { return 1.0 }
        let px = x * Double.pi
        return sin(px) / px
    }
}

/// One axis of a resampling: for each output index, the first input index, the
/// number of taps and `ksize` coefficients (Pillow's `precompute_coeffs`).
struct ResampleAxis {
    let outSize: Int
    let ksize: Int
    /// (xmin, count) per output index.
    var bounds: [Int]
    /// Double coefficients, `ksize` per output index, each row summing to 1.
    let weights: [Double]

    /// Pillow's precompute_coeffs: `in0`, `in1` are the box edges on this axis,
    /// kept as Float as Pillow passes them.
    init(inSize: Int, in0: Float, in1: Float, outSize: Int, filter: ResampleFilter) {
        // (double)(in1 - in0) / outSize: the difference is taken in float.
        let scale = Double(in1 - in0) / Double(outSize)
        let filterscale = max(scale, 1.0)
        let support = filter.support * filterscale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: outSize * 2)
        var kk = [Double](repeating: 0, count: outSize * ksize)
        let ss = 1.0 / filterscale
        for xx in 0..<outSize {
            let center = Double(in0) + (Double(xx) + 0.5) * scale
            // C's (int) cast truncates toward zero, as Int(_:) does.
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            let base = xx * ksize
            if xmax > 0 {
                for x in 0..<xmax {
                    let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                    kk[base + x] = w
                    ww += w
                }
                if ww != 0.0 {
                    for x in 0..<xmax { kk[base + x] /= ww }
                }
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = max(xmax, 0)
        }
        self.outSize = outSize
        self.ksize = ksize
        self.bounds = bounds
        self.weights = kk
    }

    /// Pillow's normalize_coeffs_8bpc: fixed point with PRECISION_BITS = 22,
    /// rounded half away from zero then truncated, as `(int)(±0.5 + k * 2^22)`.
    func fixedPoint() -> [Int32] {
        let one = Double(1 << PillowResample.precisionBits)
        return weights.map { k in
            k < 0 ? Int32(-0.5 + k * one) : Int32(0.5 + k * one)
        }
    }
}

/// Pillow's 8-bit resampling (`Image.resize` on an RGB image with a filter other
/// than NEAREST), reproduced operation for operation as Pillow 13 computes it:
/// separable passes in fixed point, each output channel
/// `clip8((1 << 21 + Σ p·k) >> 22)`, stored as 8 bits between the passes;
/// horizontal pass first unless the height shrinks by more than twice the pixels
/// the width does (then vertical first).
public enum PillowResample {
    /// 32 bits less 8 for the result and 2 for overflow of negative lobes.
    static let precisionBits = 32 - 8 - 2

    /// `image.resize((width, height), filter, box)`; `box` defaults to the whole image.
    public static func resize(_ image: ImageRGB8, width: Int, height: Int, filter: ResampleFilter,
                              box: (x0: Float, y0: Float, x1: Float, y1: Float)? = nil) throws -> ImageRGB8 {
        guard width > 0, height > 0 else {
            throw ImageError.invalid(file: "<memory>", reason: "resize to \(width)x\(height): size must be positive")
        }
        let b = box ?? (0, 0, Float(image.width), Float(image.height))
        guard b.x0 >= 0, b.y0 >= 0, b.x1 <= Float(image.width), b.y1 <= Float(image.height), b.x1 >= b.x0, b.y1 >= b.y0 else {
            throw ImageError.invalid(file: "<memory>", reason: "resize box \(b) lies outside the \(image.width)x\(image.height) image")
        }
        // Image.resize returns a copy when neither size nor box change anything, and
        // _imaging.c's resize crops when the box is integral and of the output size.
        if b.x0 == b.x0.rounded(.towardZero), b.y0 == b.y0.rounded(.towardZero),
           b.x1 - b.x0 == Float(width), b.y1 - b.y0 == Float(height) {
            return try image.cropped(x: Int(b.x0), y: Int(b.y0), width: width, height: height)
        }
        // ImagingResampleInner: note that the box's right edge is compared with the
        // *output* size, as Pillow does.
        let needHorizontal = width != image.width || b.x0 != 0 || b.x1 != Float(width)
        let needVertical = height != image.height || b.y0 != 0 || b.y1 != Float(height)
        // Pillow 13 (PR #9549): when the height shrinks by more than twice as many
        // pixels as the width does, the vertical pass runs first. The passes round
        // to 8 bits in between, so the order changes results.
        let dh = image.height - height, dw = image.width - width
        let horizontalFirst = !(dh > 0 && dh > dw * 2)

        var current = image
        if horizontalFirst {
            var vertical = ResampleAxis(inSize: image.height, in0: b.y0, in1: b.y1, outSize: height, filter: filter)
            if needHorizontal {
                // Only the rows the vertical pass reads are resampled horizontally.
                let yFirst = vertical.bounds[0]
                let yLast = vertical.bounds[2 * height - 2] + vertical.bounds[2 * height - 1]
                for i in 0..<height { vertical.bounds[2 * i] -= yFirst }
                let horizontal = ResampleAxis(inSize: image.width, in0: b.x0, in1: b.x1, outSize: width, filter: filter)
                current = horizontalPass(current, axis: horizontal, firstRow: yFirst, rows: yLast - yFirst)
            }
            if needVertical { current = verticalPass(current, axis: vertical) }
        } else {
            if needVertical {
                let vertical = ResampleAxis(inSize: image.height, in0: b.y0, in1: b.y1, outSize: height, filter: filter)
                current = verticalPass(current, axis: vertical)
            }
            if needHorizontal {
                let horizontal = ResampleAxis(inSize: image.width, in0: b.x0, in1: b.x1, outSize: width, filter: filter)
                current = horizontalPass(current, axis: horizontal, firstRow: 0, rows: current.height)
            }
        }
        return current
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s <= 0 ? 0 : (s >= 255 ? 255 : UInt8(truncatingIfNeeded: s))
    }

    /// Runs one separable pass: `body` gets the source pixels, a zeroed output of
    /// `outCount` bytes, the axis's fixed-point coefficients (`ksize` per output) and its
    /// (first, count) source bounds per output, plus the rounding offset ½ in fixed point.
    static func pass(_ src: ImageRGB8, axis: ResampleAxis, outCount: Int,
                     _ body: (_ ip: UnsafePointer<UInt8>, _ op: UnsafeMutablePointer<UInt8>,
                              _ kp: UnsafePointer<Int32>, _ bp: UnsafePointer<Int>, _ half: Int32) -> Void) -> [UInt8] {
        let kk = axis.fixedPoint()
        var out = [UInt8](repeating: 0, count: outCount)
        let half = Int32(1) << Int32(precisionBits - 1)
        src.pixels.withUnsafeBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                kk.withUnsafeBufferPointer { kBuf in
                    axis.bounds.withUnsafeBufferPointer { bBuf in
                        body(inBuf.baseAddress!, outBuf.baseAddress!, kBuf.baseAddress!, bBuf.baseAddress!, half)
                    }
                }
            }
        }
        return out
    }

    static func horizontalPass(_ src: ImageRGB8, axis: ResampleAxis, firstRow: Int, rows: Int) -> ImageRGB8 {
        let outW = axis.outSize, inW = src.width, ksize = axis.ksize
        let out = pass(src, axis: axis, outCount: outW * rows * 3) { ip, op, kp, bp, half in
            for yy in 0..<rows {
                let row = ip + (yy + firstRow) * inW * 3
                let orow = op + yy * outW * 3
                for xx in 0..<outW {
                    let xmin = bp[2 * xx], n = bp[2 * xx + 1]
                    let k = kp + xx * ksize
                    var s0 = half, s1 = half, s2 = half
                    var p = row + xmin * 3
                    for x in 0..<n {
                        let w = k[x]
                        s0 = s0 &+ Int32(p[0]) &* w
                        s1 = s1 &+ Int32(p[1]) &* w
                        s2 = s2 &+ Int32(p[2]) &* w
                        p += 3
                    }
                    orow[3 * xx] = clip8(s0)
                    orow[3 * xx + 1] = clip8(s1)
                    orow[3 * xx + 2] = clip8(s2)
                }
            }
        }
        return ImageRGB8(uncheckedWidth: outW, height: rows, pixels: out)
    }

    static func verticalPass(_ src: ImageRGB8, axis: ResampleAxis) -> ImageRGB8 {
        let outH = axis.outSize, w = src.width, ksize = axis.ksize
        let stride = w * 3
        let out = pass(src, axis: axis, outCount: w * outH * 3) { ip, op, kp, bp, half in
            for yy in 0..<outH {
                let ymin = bp[2 * yy], n = bp[2 * yy + 1]
                let k = kp + yy * ksize
                let orow = op + yy * stride
                let top = ip + ymin * stride
                for c in 0..<stride {
                    var s = half
                    var p = top + c
                    for y in 0..<n {
                        s = s &+ Int32(p[0]) &* k[y]
                        p += stride
                    }
                    orow[c] = clip8(s)
                }
            }
        }
        return ImageRGB8(uncheckedWidth: w, height: outH, pixels: out)
    }
}
