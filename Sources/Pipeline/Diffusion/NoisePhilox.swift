import Foundation
import PipelineTensor

/// The default noise source: Philox4x32-10 keyed by the 64-bit seed, with the
/// counter (block, index low 32 bits, step, purpose << 16 | index high 16 bits).
/// Normals come from Box-Muller on pairs of 32-bit words, computed in float64 and
/// rounded to float32 (uniforms in (0, 1], so the radius is finite; the tail is
/// cut at 6.66 sigma, a probability of 3e-11).
///
/// Bit-identical across runs and batchings on one platform; across platforms the
/// libm `log`/`sin`/`cos` used by Box-Muller may differ in the last ulp.
public struct PhiloxNoise: NoiseSource {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    static let maxIndex = 1 << 48

    @inline(__always)
    private func counter(block: UInt32, index: Int, purpose: NoisePurpose, step: Int) -> Philox4x32.Counter {
        (block, UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: step),
         purpose.rawValue << 16 | UInt32(truncatingIfNeeded: index >> 32))
    }

    private var key: Philox4x32.Key { (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)) }

    private func check(index: Int, step: Int, count: Int) throws {
        guard index >= 0, index < PhiloxNoise.maxIndex else {
            throw DiffusionError.noiseUnavailable("sample index \(index) outside 0..<2^48")
        }
        guard step >= 0, step <= Int(UInt32.max) else {
            throw DiffusionError.noiseUnavailable("step \(step) outside 0..<2^32")
        }
        guard count >= 0, count / 4 <= Int(UInt32.max) else {
            throw DiffusionError.noiseUnavailable("\(count) values exceed one stream's 2^34")
        }
    }

    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int,
                           index: Int, purpose: NoisePurpose, step: Int) throws {
        try check(index: index, step: step, count: count)
        let k = key
        var block: UInt32 = 0
        var written = 0
        while written < count {
            let w = Philox4x32.block(counter(block: block, index: index, purpose: purpose, step: step), key: k)
            let (a, b) = PhiloxNoise.boxMuller(w.0, w.1)
            let (c, d) = PhiloxNoise.boxMuller(w.2, w.3)
            let four = (a, b, c, d)
            let n = min(4, count - written)
            withUnsafeBytes(of: four) { raw in
                let f = raw.bindMemory(to: Float.self)
                for j in 0..<n { out[written + j] = f[j] }
            }
            written += n
            block &+= 1
        }
    }

    /// Two independent standard normals from two 32-bit words.
    @inline(__always)
    static func boxMuller(_ w0: UInt32, _ w1: UInt32) -> (Float, Float) {
        let scale = 1.0 / 4_294_967_296.0
        let u1 = (Double(w0) + 1.0) * scale  // (0, 1]
        let u2 = Double(w1) * scale          // [0, 1)
        let (a, b) = BoxMuller.pair(u1, u2)
        return (Float(a), Float(b))
    }

    public func uniformInt(below upperBound: Int, index: Int, purpose: NoisePurpose, step: Int) throws -> Int {
        guard upperBound > 0 else { throw DiffusionError.invalidArgument("uniformInt: bound \(upperBound) must be positive") }
        try check(index: index, step: step, count: 0)
        let w = Philox4x32.block(counter(block: 0, index: index, purpose: purpose, step: step), key: key)
        let bits = UInt64(w.0) << 32 | UInt64(w.1)
        // Lemire's multiply-shift: bias below 2^-64 * upperBound.
        return Int(bits.multipliedFullWidth(by: UInt64(upperBound)).high)
    }
}
