import Foundation
import Logging

extension KeyStore {
    /// The CURVE keys of a control client (`submit|status|cancel|retry --coordinator`): a
    /// worker's (`NAME.key` on the allow-list, `coordinator.pub`), or with the name
    /// `coordinator` the coordinator's own pair, which `serve` also admits (for a shell beside
    /// the coordinator that holds only its keys, e.g. inside its Kubernetes pod).
    public static func loadControlKeys(directory: String, name: String?,
                                       logger: Logger = Logger(label: "dit.messaging")) throws -> CurveClientKeys {
        guard name == coordinatorName else { return try loadClientKeys(directory: directory, name: name, logger: logger) }
        let pair = try loadPair(directory: directory, name: coordinatorName, logger: logger)
        return CurveClientKeys(publicKey: pair.publicKey, secretKey: pair.secretKey, serverPublicKey: pair.publicKey)
    }
}
