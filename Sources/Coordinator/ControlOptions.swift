import ArgumentParser
import CLIOptions
import Foundation
import PipelineJobs
import PipelineMessaging

/// How `submit`, `status`, `cancel` and `retry` reach the ledger: through the running
/// coordinator (`--coordinator`, a CONTROL message), or, when none runs, by opening the
/// file under its lock (refused, naming the coordinator, while one holds it).
struct ControlOptions: ParsableArguments {
    @Option(help: "A running coordinator (tcp://HOST:PORT) to send the command to; required while one holds the ledger.")
    var coordinator: String?
    @Option(help: "CURVE keys folder for --coordinator (NAME.key on the coordinator's allow-list, coordinator.pub).")
    var keys: String?
    @Option(help: "Key name in the keys folder (when it holds several).") var keyName: String?
    @Option(help: "Seconds to wait for the coordinator's reply.") var timeout: Double = 60

    /// Runs `request` and prints its output (its notice on standard error); throws its error.
    func perform(_ request: ControlRequest, ledger: LedgerOptions) throws {
        let reply: ControlReply
        if let coordinator {
            let curve = try keys.map { try KeyStore.loadControlKeys(directory: $0, name: keyName) }
            reply = try ControlClient.send(request, to: coordinator, curve: curve, timeout: timeout)
        } else {
            let lock = try ledger.lock(role: request.operation.rawValue)
            defer { lock.release() }
            reply = LedgerControl.perform(request, on: try ledger.open())
        }
        if let notice = reply.notice { coordinatorLog.notice("\(notice)") }
        if let error = reply.error { throw CommandFailure(description: error) }
        print(reply.output)
    }
}

/// A command's error as the ledger or the coordinator worded it.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}
