import Foundation

/// The Box-Muller transform, in float64: uniforms u1 ∈ (0, 1] and u2 ∈ [0, 1) give the
/// standard normals r·cos θ and r·sin θ with r = √(−2 ln u1), θ = 2π u2. The one copy, used
/// by the Philox diffusion noise (both values of a pair) and the training draws (the cosine
/// one). Its values feed the sampler's bytes: keep the arithmetic as it is.
public enum BoxMuller {
    /// (r·cos θ, r·sin θ).
    @inline(__always)
    public static func pair(_ u1: Double, _ u2: Double) -> (Double, Double) {
        let r = (-2.0 * Foundation.log(u1)).squareRoot()
        let theta = 2.0 * Double.pi * u2
        return (r * Foundation.cos(theta), r * Foundation.sin(theta))
    }

    /// r·cos θ alone (the pair's first value, without the sine).
    @inline(__always)
    public static func first(_ u1: Double, _ u2: Double) -> Double {
        (-2.0 * Foundation.log(u1)).squareRoot() * Foundation.cos(2.0 * Double.pi * u2)
    }
}
