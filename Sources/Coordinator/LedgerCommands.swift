import ArgumentParser
import CLIOptions
import Foundation
import PipelineJobs
import PipelineMessaging

/// `submit KIND ...`: plans a job into the ledger and prints its id (a serving coordinator picks it up).
struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a job to the ledger; prints the job id.",
        subcommands: [SubmitKind<SampleOptions>.self, SubmitKind<EncodeOptions>.self, SubmitKind<NoiseOptions>.self,
                       SubmitKind<FIDStatsOptions>.self, SubmitKind<SyntheticOptions>.self, SubmitKind<NoopOptions>.self])
}

struct SubmitKind<K: KindOptions>: ParsableCommand {
    static var configuration: CommandConfiguration { CommandConfiguration(commandName: K.kindName, abstract: K.abstract) }
    @OptionGroup var kind: K
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var control: ControlOptions
    @OptionGroup var sharding: ShardingOptions
    @Flag(help: "Add a new job even if the same spec is already in the ledger.") var fresh = false
    @OptionGroup var logging: LogOptions

    func run() throws {
        logging.bootstrap()
        try control.perform(ControlRequest(operation: .submit, kind: K.kindName, spec: String(decoding: try kind.spec(), as: UTF8.self),
                                           maxAttempts: sharding.maxAttempts, leaseSeconds: sharding.leaseSeconds, fresh: fresh),
                            ledger: ledger)
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Progress, shards, rates, ETA, workers and item errors.")
    @Argument(help: "Job id (all jobs if omitted).") var job: Int64?
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var control: ControlOptions
    @Option(help: "Item errors listed per job.") var maxItemErrors: Int = 20
    @Flag(help: "Print the JSON document the coordinator serves at /api/jobs (/api/jobs/ID with a job id).") var json = false
    func run() throws {
        try control.perform(ControlRequest(operation: .status, jobId: job, maxItemErrors: maxItemErrors, json: json), ledger: ledger)
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a job (late results are ignored).")
    @Argument var job: Int64
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var control: ControlOptions
    func run() throws { try control.perform(ControlRequest(operation: .cancel, jobId: job), ledger: ledger) }
}

struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-open a job's failed shards (or resume a cancelled job).")
    @Argument var job: Int64
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var control: ControlOptions
    func run() throws { try control.perform(ControlRequest(operation: .retry, jobId: job), ledger: ledger) }
}
