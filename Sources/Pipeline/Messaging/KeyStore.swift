import Foundation
import PipelineFiles
import Logging

/// CURVE key files in a keys folder, as written by `dit-coordinator keygen`:
///
///     DIR/coordinator.key      coordinator secret key (0600)
///     DIR/coordinator.pub      coordinator public key (copy it to every worker)
///     DIR/workers/NAME.pub     the allow-list: one public key per admitted worker
///     DIR/NAME.key, NAME.pub   a worker's key pair (copy NAME.key + coordinator.pub to it)
///
/// Without a `workers/` folder, the top-level `NAME.pub` files are the allow-list
/// (see `loadServerKeys`).
/// Every file holds one Z85 key on one line. Secrets are created 0600.
public enum KeyStore {
    public static let coordinatorName = "coordinator"
    public static let allowListFolder = "workers"

    /// What `keygen` wrote or kept.
    public struct KeygenReport: Equatable {
        public var coordinatorPublicKey: String
        public var createdCoordinator: Bool
        public var workers: [(name: String, publicKey: String)]
        public var files: [String]

        public static func == (a: KeygenReport, b: KeygenReport) -> Bool {
            a.coordinatorPublicKey == b.coordinatorPublicKey && a.createdCoordinator == b.createdCoordinator
                && a.files == b.files && a.workers.map(\.name) == b.workers.map(\.name)
                && a.workers.map(\.publicKey) == b.workers.map(\.publicKey)
        }
    }

    /// Creates the coordinator key pair in `directory` unless it exists (then it is
    /// loaded and kept: replacing it would lock out every worker; delete it to
    /// start over), and one key pair per worker name, added to the allow-list.
    /// An existing worker key is an error (before anything is written) unless `overwrite`.
    public static func keygen(directory: String, workers: [String], overwrite: Bool = false) throws -> KeygenReport {
        for name in workers { try validateName(name) }
        guard Set(workers).count == workers.count else { throw MessagingError.invalidUse("duplicate worker name in \(workers)") }
        let fm = FileManager.default
        if !overwrite {
            for name in workers where fm.fileExists(atPath: path(directory, name + ".key")) {
                throw MessagingError.badKey(path: path(directory, name + ".key"), reason: "already exists (pass --force to replace it)")
            }
        }
        try fm.createDirectory(atPath: directory + "/" + allowListFolder, withIntermediateDirectories: true)
        var files: [String] = []
        let coordinatorPublic: String
        var created = false
        let secretPath = path(directory, coordinatorName + ".key")
        if fm.fileExists(atPath: secretPath) {
            coordinatorPublic = try loadPair(directory: directory, name: coordinatorName).publicKey
        } else {
            let pair = try Curve.generateKeyPair()
            try writeKey(pair.secretKey, to: secretPath, secret: true)
            try writeKey(pair.publicKey, to: path(directory, coordinatorName + ".pub"), secret: false)
            files += [secretPath, path(directory, coordinatorName + ".pub")]
            coordinatorPublic = pair.publicKey
            created = true
        }
        var made: [(String, String)] = []
        for name in workers {
            let key = path(directory, name + ".key")
            let pair = try Curve.generateKeyPair()
            try writeKey(pair.secretKey, to: key, secret: true)
            try writeKey(pair.publicKey, to: path(directory, name + ".pub"), secret: false)
            try writeKey(pair.publicKey, to: path(directory, allowListFolder + "/" + name + ".pub"), secret: false)
            files += [key, path(directory, name + ".pub"), path(directory, allowListFolder + "/" + name + ".pub")]
            made.append((name, pair.publicKey))
        }
        return KeygenReport(coordinatorPublicKey: coordinatorPublic, createdCoordinator: created, workers: made, files: files)
    }

    /// The coordinator's keys and the allow-list: every `workers/*.pub`. A folder
    /// without `workers/` (a flattened copy, e.g. a Kubernetes secret made with
    /// `kubectl create secret generic --from-file=keys/`, which skips sub-folders)
    /// allows every top-level `NAME.pub` other than `coordinator.pub` instead.
    public static func loadServerKeys(directory: String, logger: Logger = Logger(label: "dit.messaging")) throws -> CurveServerKeys {
        let pair = try loadPair(directory: directory, name: coordinatorName, logger: logger)
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let allowDir = path(directory, allowListFolder)
        let nested = fm.fileExists(atPath: allowDir, isDirectory: &isDir) && isDir.boolValue
        let listDir = nested ? allowDir : directory
        var allowed = Set<String>()
        let names = (try? fm.contentsOfDirectory(atPath: listDir)) ?? []
        for name in names.sorted() where name.hasSuffix(".pub") && !name.hasPrefix(".") {
            if !nested && name == coordinatorName + ".pub" { continue }
            allowed.insert(try readKey(path(listDir, name)))
        }
        if !nested {
            logger.log(level: .info, "no \(allowDir) folder: allowing the \(allowed.count) top-level worker .pub file(s) in \(directory)")
        }
        if allowed.isEmpty {
            logger.log(level: .warning, "CURVE allow-list \(listDir) is empty: no worker will be admitted")
        }
        return CurveServerKeys(publicKey: pair.publicKey, secretKey: pair.secretKey, allowedClientKeys: allowed)
    }

    /// A worker's keys: `NAME.key` (its `.pub` is derived and checked when present)
    /// and `coordinator.pub`. Without a name, the folder must hold exactly one
    /// worker secret (any `*.key` other than `coordinator.key`).
    public static func loadClientKeys(directory: String, name: String? = nil,
                                      logger: Logger = Logger(label: "dit.messaging")) throws -> CurveClientKeys {
        let workerName: String
        if let name {
            try validateName(name)
            workerName = name
        } else {
            let keys = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".key") && $0 != coordinatorName + ".key" }.sorted()
            guard keys.count == 1 else {
                throw MessagingError.badKey(path: directory, reason: keys.isEmpty
                    ? "no worker secret key (NAME.key) found"
                    : "several worker keys (\(keys.joined(separator: ", "))): name one")
            }
            workerName = String(keys[0].dropLast(4))
        }
        let pair = try loadPair(directory: directory, name: workerName, logger: logger)
        let server = try readKey(path(directory, coordinatorName + ".pub"))
        return CurveClientKeys(publicKey: pair.publicKey, secretKey: pair.secretKey, serverPublicKey: server)
    }

    /// Loads `NAME.key`, derives its public key and checks it against `NAME.pub` when that exists.
    static func loadPair(directory: String, name: String,
                         logger: Logger = Logger(label: "dit.messaging")) throws -> (publicKey: String, secretKey: String) {
        let secretPath = path(directory, name + ".key")
        let secret = try readKey(secretPath)
        var st = stat()
        if stat(secretPath, &st) == 0 && (st.st_mode & 0o077) != 0 {
            logger.log(level: .warning, "secret key \(secretPath) is readable by group/others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        let pub = try Curve.publicKey(forSecret: secret)
        let pubPath = path(directory, name + ".pub")
        if FileManager.default.fileExists(atPath: pubPath) {
            let stored = try readKey(pubPath)
            guard stored == pub else { throw MessagingError.badKey(path: pubPath, reason: "does not match the secret key \(secretPath)") }
        }
        return (pub, secret)
    }

    /// Reads one Z85 key from a text file (surrounding whitespace ignored).
    public static func readKey(_ file: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw MessagingError.badKey(path: file, reason: "cannot read the file")
        }
        guard data.count < 4096, let text = String(data: data, encoding: .utf8) else {
            throw MessagingError.badKey(path: file, reason: "not a text key file")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Curve.isValidZ85Key(key) else {
            throw MessagingError.badKey(path: file, reason: "not a 40-character Z85 CURVE key")
        }
        return key
    }

    /// Writes one key line atomically (0600 for secrets, 0644 otherwise).
    static func writeKey(_ key: String, to file: String, secret: Bool) throws {
        do {
            try AtomicFile.write(Data((key + "\n").utf8), to: file, permissions: secret ? 0o600 : 0o644)
        } catch let e as FileError {
            throw MessagingError.badKey(path: file, reason: "cannot write: \(e.reason)")
        }
    }

    static func validateName(_ name: String) throws {
        let ok = !name.isEmpty && name.count <= 64 && name != coordinatorName
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }
            && !name.hasPrefix(".")
        guard ok else {
            throw MessagingError.invalidUse("worker name \(name.debugDescription): use 1-64 letters, digits, '-', '_' or '.', not starting with '.' and not \"coordinator\"")
        }
    }

    private static func path(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}
