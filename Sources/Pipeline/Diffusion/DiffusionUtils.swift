import Foundation
import PipelineTensor

/// ADM's `diffusion_utils`: element-wise, in float32 as the reference's tensors.
public enum DiffusionUtils {
    /// KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), in nats.
    @inline(__always)
    public static func normalKL(mean1: Float, logvar1: Float, mean2: Float, logvar2: Float) -> Float {
        let d = mean1 - mean2
        return 0.5 * (-1.0 + logvar2 - logvar1 + Foundation.exp(logvar1 - logvar2) + (d * d) * Foundation.exp(-logvar2))
    }

    /// Reference quirk: the standard normal CDF is the tanh approximation
    /// 0.5 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), not erf.
    @inline(__always)
    public static func approxStandardNormalCDF(_ x: Float) -> Float {
        let k = Float((2.0 / Double.pi).squareRoot())
        return 0.5 * (1.0 + Foundation.tanh(k * (x + 0.044715 * (x * x * x))))
    }

    /// Log-likelihood (nats) of `x` under a Gaussian discretised to 8-bit bins of
    /// width 2/255 on [-1, 1], with open-ended edge bins (x < -0.999, x > 0.999).
    @inline(__always)
    public static func discretizedGaussianLogLikelihood(x: Float, mean: Float, logScale: Float) -> Float {
        let centered = x - mean
        let invStdv = Foundation.exp(-logScale)
        let halfBin: Float = 1.0 / 255.0
        let cdfPlus = approxStandardNormalCDF(invStdv * (centered + halfBin))
        let cdfMin = approxStandardNormalCDF(invStdv * (centered - halfBin))
        if x < -0.999 { return Foundation.log(max(cdfPlus, 1e-12)) }
        if x > 0.999 { return Foundation.log(max(1.0 - cdfMin, 1e-12)) }
        return Foundation.log(max(cdfPlus - cdfMin, 1e-12))
    }

    /// `mean_flat`: the mean over all non-batch dimensions, one value per row
    /// (accumulated in float64).
    public static func meanFlat(_ t: Tensor) -> [Float] {
        guard t.rank >= 1, t.shape[0] > 0 else { return [] }
        let per = t.count / t.shape[0]
        return (0..<t.shape[0]).map { b in
            var s = 0.0
            let p = t.data + b * per
            for i in 0..<per { s += Double(p[i]) }
            return Float(s / Double(per))
        }
    }
}
