import ArgumentParser

/// `dit-coordinator`: owns the job ledger and hands shards to workers.
@main
struct DitCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dit-coordinator",
        abstract: "Coordinator for distributed DiT encode / noise / sample / fidstats jobs.",
        subcommands: [Serve.self, Submit.self, Run.self, Status.self, Cancel.self, Retry.self,
                      CoordinatorBenchCommand.self, Keygen.self, FIDCommand.self]
    )
}
