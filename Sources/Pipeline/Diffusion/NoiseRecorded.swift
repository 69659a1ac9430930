import PipelineTensor
/// Noise recorded by a reference run (the fixtures' `z_T`, `step_noise`, labels),
/// served through the same protocol the samplers use.
///
/// `initial` is `[N, ...]` (row = sample index); `steps` is `[S, M, ...]` where
/// `steps[s]` is what loop step `s` draws (M ≥ N rows: the reference draws for the
/// whole CFG-doubled batch; sample `i` takes row `i`).
public struct RecordedNoise: NoiseSource {
    public let initial: Tensor?
    public let steps: Tensor?
    public let labels: [Int]?

    public init(initial: Tensor? = nil, steps: Tensor? = nil, labels: [Int]? = nil) {
        self.initial = initial
        self.steps = steps
        self.labels = labels
    }

    public func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int,
                           index: Int, purpose: NoisePurpose, step: Int) throws {
        switch purpose {
        case .initialLatent:
            guard let t = initial else { throw DiffusionError.noiseUnavailable("no recorded initial latents") }
            try copyRow(t, row: index, count: count, into: out, what: "initial latent")
        case .samplerStep:
            guard let t = steps else { throw DiffusionError.noiseUnavailable("no recorded step noise") }
            guard t.rank >= 2, step >= 0, step < t.shape[0] else {
                throw DiffusionError.noiseUnavailable("step \(step) not recorded (have \(t.shape.first ?? 0) steps)")
            }
            let perStep = t.count / t.shape[0]
            let rows = t.shape[1]
            guard index >= 0, index < rows, count == perStep / rows else {
                throw DiffusionError.noiseUnavailable(
                    "step noise row \(index) of \(count) values not recorded (rows \(rows) of \(perStep / max(rows, 1)))")
            }
            out.update(from: t.data + step * perStep + index * count, count: count)
        default:
            throw DiffusionError.noiseUnavailable("no recorded noise for \(purpose)")
        }
    }

    private func copyRow(_ t: Tensor, row: Int, count: Int, into out: UnsafeMutablePointer<Float>, what: String) throws {
        guard t.rank >= 1, row >= 0, row < t.shape[0], t.count / t.shape[0] == count else {
            throw DiffusionError.noiseUnavailable("\(what) row \(row) of \(count) values not recorded (have \(t.shape))")
        }
        out.update(from: t.data + row * count, count: count)
    }

    public func uniformInt(below upperBound: Int, index: Int, purpose: NoisePurpose, step: Int) throws -> Int {
        guard purpose == .classLabel, let l = labels else {
            throw DiffusionError.noiseUnavailable("no recorded integers for \(purpose)")
        }
        guard index >= 0, index < l.count else { throw DiffusionError.noiseUnavailable("no recorded label for sample \(index)") }
        guard l[index] >= 0, l[index] < upperBound else {
            throw DiffusionError.labelOutOfRange(label: l[index], index: index, numClasses: upperBound)
        }
        return l[index]
    }
}
