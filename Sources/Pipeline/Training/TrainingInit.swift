import Foundation
import PipelineTensor
import PipelineDiT

extension TrainableDiT {
    /// A fresh model initialised as `models.py` `DiT.initialize_weights` does: every Linear
    /// Xavier-uniform with zero bias; the patch conv Xavier-uniform on its (D, C·p·p) view
    /// with zero bias; label table and timestep-MLP weights N(0, 0.02²); every adaLN
    /// modulation and the final linear zero (adaLN-Zero); `pos_embed` the fixed 2-D sin-cos table.
    /// Deterministic in `seed`.
    public convenience init(initializing config: DiTConfig, seed: UInt64) throws {
        var c = config
        c.layout = .reference
        // A throwaway random model supplies the module structure; every tensor is overwritten.
        let model = try DiT(randomWeights: c, seed: seed)
        try self.init(model)
        var rng = SplitMix64(seed: seed ^ 0x5EED_1A17_0000_0001)
        func xavier(_ l: TrainLinear) {
            let bound = Float((6.0 / Double(l.inFeatures + l.outFeatures)).squareRoot())
            for i in 0..<l.weight.count { l.weight.data[i] = Float(rng.unit() * 2 - 1) * bound }
            l.bias.data.update(repeating: 0, count: l.bias.count)
        }
        func normal(_ t: Tensor, std: Float) {
            for i in 0..<t.count { t.data[i] = std * TrainingRandom.gaussian(&rng) }
        }
        func zero(_ l: TrainLinear) {
            l.weight.data.update(repeating: 0, count: l.weight.count)
            l.bias.data.update(repeating: 0, count: l.bias.count)
        }
        for b in blocks { for l in [b.qkv, b.proj, b.fc1, b.fc2] { xavier(l) } }
        xavier(tFC1); xavier(tFC2); xavier(finalAdaLN); xavier(finalLinear)
        xavier(patch)
        normal(labelTable, std: 0.02)
        normal(tFC1.weight, std: 0.02)
        normal(tFC2.weight, std: 0.02)
        for b in blocks { zero(b.adaLN) }
        zero(finalAdaLN)
        zero(finalLinear)
    }
}

/// Deterministic draws for training (`SplitMix64` streams keyed by seed, step and purpose).
public enum TrainingRandom {
    /// A standard normal (Box–Muller on two 53-bit uniforms).
    public static func gaussian(_ rng: inout SplitMix64) -> Float {
        let u1 = max(rng.unit(), 1e-300), u2 = rng.unit()
        return Float(BoxMuller.first(u1, u2))
    }

    /// The stream for one purpose of one step.
    public static func stream(seed: UInt64, step: Int, purpose: UInt64) -> SplitMix64 {
        var mix = SplitMix64(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ (purpose &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mix.next())
    }

    /// A uniform integer in 0..<n (n > 0).
    public static func below(_ n: Int, _ rng: inout SplitMix64) -> Int { Int(rng.next() % UInt64(n)) }
}
