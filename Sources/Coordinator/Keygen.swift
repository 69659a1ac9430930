import ArgumentParser
import PipelineMessaging

/// `dit-coordinator keygen --out DIR [--worker NAME ...]`: CURVE key pairs for
/// the coordinator and its workers, and the coordinator's allow-list.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create CURVE key pairs: the coordinator's (kept if present) and one per --worker, added to the allow-list.",
        discussion: """
        Writes DIR/coordinator.key (secret, 0600) and DIR/coordinator.pub, and for each worker NAME:
        DIR/NAME.key (secret, 0600), DIR/NAME.pub and the allow-list entry DIR/workers/NAME.pub.
        Copy NAME.key and coordinator.pub to the worker's keys folder (dit-worker --keys DIR).
        """
    )

    @Option(name: .long, help: "Keys folder (created if missing).")
    var out: String

    @Option(name: .customLong("worker"), help: "A worker name (repeat for several).")
    var workers: [String] = []

    @Flag(name: .long, help: "Replace existing worker key files of the same names (the coordinator key is always kept).")
    var force = false

    func run() throws {
        let report = try KeyStore.keygen(directory: out, workers: workers, overwrite: force)
        print("coordinator public key: \(report.coordinatorPublicKey)\(report.createdCoordinator ? " (new)" : " (existing, kept)")")
        for w in report.workers { print("worker \(w.name) public key: \(w.publicKey) (allow-listed)") }
        for f in report.files { print("wrote \(f)") }
    }
}
