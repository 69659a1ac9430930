import ArgumentParser
import CLIOptions
import Foundation
import PipelineJobs

/// The flags of one job kind, turned into its JSON spec. `submit KIND` and `run KIND` take
/// the same flags.
protocol KindOptions: ParsableArguments {
    static var kindName: String { get }
    static var abstract: String { get }
    func spec() throws -> Data
}

struct SyntheticOptions: KindOptions {
    static let kindName = "synthetic"
    static let abstract = "Deterministic files from (seed, item index): tests and benchmarks of the pipeline itself."
    @Option(help: "Output folder (shared by coordinator and workers).") var out: String
    @Option(help: "Number of items.") var items: Int
    @Option(help: "Items per shard.") var itemsPerShard: Int = 100
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Bytes written per item.") var bytesPerItem: Int = 64
    @Option(help: "Simulated work per item, milliseconds.") var millisPerItem: Double = 0
    @Option(parsing: .upToNextOption, help: "Items to report as bad (per-item errors).") var badItems: [Int] = []

    func spec() throws -> Data {
        try JobKinds.encode(SyntheticSpec(outputDir: absolute(out), items: items, itemsPerShard: itemsPerShard, seed: seed,
                                          bytesPerItem: bytesPerItem, millisPerItem: millisPerItem, badItems: badItems))
    }
}

struct NoopOptions: KindOptions {
    static let kindName = "noop"
    static let abstract = "Shards that do nothing (dispatch benchmark)."
    @Option(help: "Output folder (nothing is written).") var out: String = "."
    @Option(help: "Number of items.") var items: Int
    @Option(help: "Items per shard.") var itemsPerShard: Int = 1
    func spec() throws -> Data {
        try JobKinds.encode(NoopSpec(outputDir: absolute(out), items: items, itemsPerShard: itemsPerShard))
    }
}

/// The ledger file every command works on.
struct LedgerOptions: ParsableArguments {
    @Option(help: "The job ledger (SQLite).") var ledger: String = "dit-ledger.sqlite"
    func open() throws -> Ledger { try Ledger(path: absolute(ledger)) }
    /// Takes the ledger's lock (one coordinator or command per ledger) as `role`.
    func lock(role: String) throws -> LedgerLock { try LedgerLock(ledger: absolute(ledger), role: role) }
}

/// How a job's shards are retried.
struct ShardingOptions: ParsableArguments {
    @Option(help: "Attempts per shard before it is marked failed.") var maxAttempts: Int = 3
    @Option(help: "Longest time one shard attempt may take before it is leased again (s); a dead worker's leases are released at once.") var leaseSeconds: Double = 600
}
