import ArgumentParser
import CLIOptions
import Foundation

/// Options whose job leaves a report for `run` to print once it is done.
protocol ReportingKindOptions {
    func report() throws -> String?
}

/// `run noise` / `submit noise`: the flags of `dit-worker noise` (one shared group).
struct NoiseOptions: KindOptions, ReportingKindOptions {
    static let kindName = NoiseArguments.kindName
    static let abstract = NoiseArguments.abstractText
    @OptionGroup var noise: NoiseArguments

    func spec() throws -> Data { try noise.spec() }
    func report() throws -> String? { try noise.lossTable() }
}
