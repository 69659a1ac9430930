import JobOptions
import Pipeline

/// `run noise` / `submit noise`: the flags of `dit-worker noise` (one shared group).
extension NoiseOptions: KindOptions {
    static var abstract: String { abstractText }
    func report() throws -> String? { try lossTable() }
}
