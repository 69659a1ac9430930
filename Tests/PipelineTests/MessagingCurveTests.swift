import Foundation
import Logging
import XCTest
@testable import PipelineMessaging

/// CURVE keys on disk and the ZAP allow-list, on loopback.
final class MessagingCurveTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = Fixtures.tempDir("dit-keys") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func mode(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0, path)
        return st.st_mode & 0o777
    }

    func testKeygenWritesKeyFilesWithPrivateSecrets() throws {
        let report = try KeyStore.keygen(directory: dir, workers: ["gpu-1", "gpu-2"])
        XCTAssertTrue(report.createdCoordinator)
        XCTAssertEqual(report.workers.map(\.name), ["gpu-1", "gpu-2"])
        for secret in ["coordinator.key", "gpu-1.key", "gpu-2.key"] { XCTAssertEqual(mode(dir + "/" + secret), 0o600, secret) }
        for pub in ["coordinator.pub", "gpu-1.pub", "workers/gpu-1.pub", "workers/gpu-2.pub"] {
            XCTAssertEqual(mode(dir + "/" + pub), 0o644, pub)
        }
        let server = try KeyStore.loadServerKeys(directory: dir, logger: .silent)
        XCTAssertEqual(server.publicKey, report.coordinatorPublicKey)
        XCTAssertEqual(server.allowedClientKeys, Set(report.workers.map(\.publicKey)))
        XCTAssertEqual(try Curve.publicKey(forSecret: server.secretKey), server.publicKey)
        let client = try KeyStore.loadClientKeys(directory: dir, name: "gpu-2", logger: .silent)
        XCTAssertEqual(client.serverPublicKey, server.publicKey)
        XCTAssertEqual(client.publicKey, report.workers[1].publicKey)
        // Several worker keys in one folder: a name is needed.
        XCTAssertThrowsError(try KeyStore.loadClientKeys(directory: dir, logger: .silent))

        // A second run keeps the coordinator key and refuses to overwrite a worker key.
        let again = try KeyStore.keygen(directory: dir, workers: ["gpu-3"])
        XCTAssertFalse(again.createdCoordinator)
        XCTAssertEqual(again.coordinatorPublicKey, report.coordinatorPublicKey)
        XCTAssertEqual(try KeyStore.loadServerKeys(directory: dir, logger: .silent).allowedClientKeys.count, 3)
        XCTAssertThrowsError(try KeyStore.keygen(directory: dir, workers: ["gpu-4", "gpu-1"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/gpu-4.key"), "wrote keys before refusing")
        let old = try KeyStore.readKey(dir + "/gpu-1.pub")
        let forced = try KeyStore.keygen(directory: dir, workers: ["gpu-1"], overwrite: true)
        XCTAssertEqual(forced.coordinatorPublicKey, report.coordinatorPublicKey, "--force must keep the coordinator key")
        XCTAssertNotEqual(try KeyStore.readKey(dir + "/workers/gpu-1.pub"), old)
        XCTAssertThrowsError(try KeyStore.keygen(directory: dir, workers: ["../evil"]))
        XCTAssertThrowsError(try KeyStore.keygen(directory: dir, workers: ["coordinator"]))
    }

    func testBadKeyFilesAreClearErrors() throws {
        _ = try KeyStore.keygen(directory: dir, workers: ["w"])
        // A worker folder holding only its own key and the coordinator's public key.
        let solo = dir + "/solo"
        try FileManager.default.createDirectory(atPath: solo, withIntermediateDirectories: true)
        for f in ["w.key", "coordinator.pub"] { try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: solo + "/" + f) }
        XCTAssertEqual(try KeyStore.loadClientKeys(directory: solo, logger: .silent).publicKey,
                       try KeyStore.readKey(dir + "/w.pub"))
        // A .pub that does not belong to the secret.
        try Data((try Curve.generateKeyPair().publicKey + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/w.pub"))
        XCTAssertThrowsError(try KeyStore.loadClientKeys(directory: dir, name: "w", logger: .silent)) { e in
            XCTAssertTrue("\(e)".contains("does not match"), "\(e)")
        }
        // A truncated secret.
        try Data("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8".utf8).write(to: URL(fileURLWithPath: dir + "/coordinator.key"))
        XCTAssertThrowsError(try KeyStore.loadServerKeys(directory: dir, logger: .silent)) { e in
            XCTAssertTrue("\(e)".contains("coordinator.key") && "\(e)".contains("Z85"), "\(e)")
        }
        XCTAssertThrowsError(try KeyStore.loadServerKeys(directory: dir + "/missing", logger: .silent))
    }

    func testAllowListedWorkerGetsInAndUnknownKeyIsRefused() throws {
        _ = try KeyStore.keygen(directory: dir, workers: ["good"])
        let log = LogCapture()
        let server = try KeyStore.loadServerKeys(directory: dir, logger: log.logger)
        // tcp://* would need CURVE; loopback with CURVE on must work the same way.
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: server, heartbeatInterval: 0.1, liveness: 10, logger: log.logger)
        defer { c.close() }
        XCTAssertTrue(c.isEncrypted)

        // Unknown key: the handshake is refused, nothing arrives, the refusal is logged.
        let stranger = try Curve.generateKeyPair()
        let strangerLog = LogCapture()
        let bad = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello("stranger"),
                                     curve: CurveClientKeys(publicKey: stranger.publicKey, secretKey: stranger.secretKey,
                                                            serverPublicKey: server.publicKey),
                                     heartbeatInterval: 0.1, logger: strangerLog.logger)
        let badRunner = WorkerRunner(bad) { .result(MessagingFixtures.result(for: $0)) }
        defer { bad.stop(graceful: false); XCTAssertTrue(badRunner.join(timeout: 5)) }
        // A plaintext client gets nowhere either.
        let (ctx, plain) = try MessagingFixtures.rawDealer(c.boundEndpoint)
        defer { plain.close(); ctx.terminate() }
        try plain.send(try WireCodec.encode(.ready(MessagingFixtures.hello("plain"))))
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 1.0) { _ in true }, "a refused client got a message through")
        XCTAssertTrue(log.contains("refused CURVE client key \(stranger.publicKey)"), "\(log.lines)")
        XCTAssertTrue(strangerLog.contains("refused this worker's CURVE key"), "\(strangerLog.lines)")
        XCTAssertTrue(log.contains("refused a connection on"), "the plaintext client's failed handshake: \(log.lines)")

        // Allow-listed key: admitted.
        let good = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello("good"),
                                      curve: try KeyStore.loadClientKeys(directory: dir, name: "good", logger: .silent),
                                      heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        let goodRunner = WorkerRunner(good) { .result(MessagingFixtures.result(for: $0)) }
        defer { good.stop(graceful: false); XCTAssertTrue(goodRunner.join(timeout: 5)) }
        guard let ready = try MessagingFixtures.receive(c, timeout: 5, where: { $0.isReady }) else {
            return XCTFail("the allow-listed worker was not admitted: \(log.lines)")
        }
        XCTAssertEqual(c.hello(of: ready.peer)?.workerId, "good")
        XCTAssertEqual(c.clientKey(of: ready.peer), try KeyStore.readKey(dir + "/workers/good.pub"))
        let a = MessagingFixtures.assignment()
        try c.send(.assign(a), to: ready.peer)
        let got = try MessagingFixtures.receive(c, timeout: 5) { $0.isResult }
        XCTAssertEqual(got?.message, .result(MessagingFixtures.result(for: a)))
        XCTAssertFalse(log.lines.contains { $0.contains("stranger") && $0.contains("ready") })
    }

    func testWorkerWithTheWrongServerKeyNeverConnects() throws {
        _ = try KeyStore.keygen(directory: dir, workers: ["w"])
        let server = try KeyStore.loadServerKeys(directory: dir, logger: .silent)
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: server, heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        defer { c.close() }
        var keys = try KeyStore.loadClientKeys(directory: dir, name: "w", logger: .silent)
        keys.serverPublicKey = try Curve.generateKeyPair().publicKey   // an impostor's key
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(), curve: keys,
                                   heartbeatInterval: 0.1, logger: .silent)
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.8) { _ in true })
    }

    func testAllowListReloadAdmitsANewWorker() throws {
        _ = try KeyStore.keygen(directory: dir, workers: [])
        let log = LogCapture()
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: try KeyStore.loadServerKeys(directory: dir, logger: log.logger),
                                        heartbeatInterval: 0.1, liveness: 10, logger: log.logger)
        defer { c.close() }
        XCTAssertTrue(log.contains("allow-list"), "an empty allow-list is worth a warning: \(log.lines)")
        _ = try KeyStore.keygen(directory: dir, workers: ["late"])
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello("late"),
                                   curve: try KeyStore.loadClientKeys(directory: dir, logger: .silent),
                                   heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        w.reconnectInitial = 0.05
        w.reconnectMax = 0.2
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.5) { _ in true })
        try c.setAllowedClientKeys(try KeyStore.loadServerKeys(directory: dir, logger: .silent).allowedClientKeys)
        let ready = try MessagingFixtures.receive(c, timeout: 5) { $0.isReady }
        XCTAssertEqual(ready.flatMap { c.hello(of: $0.peer)?.workerId }, "late")
    }

    func testFlattenedKeysFolderAllowsTopLevelWorkerKeys() throws {
        let report = try KeyStore.keygen(directory: dir, workers: ["a", "b"])
        // What a Kubernetes secret made from the folder holds: regular files only.
        let flat = dir + "/flat"
        try FileManager.default.createDirectory(atPath: flat, withIntermediateDirectories: true)
        for f in ["coordinator.key", "coordinator.pub", "a.key", "a.pub", "b.pub"] {
            try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: flat + "/" + f)
        }
        let server = try KeyStore.loadServerKeys(directory: flat, logger: .silent)
        XCTAssertEqual(server.allowedClientKeys, Set(report.workers.map(\.publicKey)))
        XCTAssertFalse(server.allowedClientKeys.contains(report.coordinatorPublicKey))
        // With workers/ present, only it counts: removing an entry revokes that worker.
        try FileManager.default.removeItem(atPath: dir + "/workers/b.pub")
        XCTAssertEqual(try KeyStore.loadServerKeys(directory: dir, logger: .silent).allowedClientKeys, [report.workers[0].publicKey])
    }

    func testWithoutAZAPHandlerEveryClientIsRefused() throws {
        _ = try KeyStore.keygen(directory: dir, workers: ["w"])
        let c = try CoordinatorEndpoint(bind: "tcp://127.0.0.1:0", curve: try KeyStore.loadServerKeys(directory: dir, logger: .silent),
                                        heartbeatInterval: 0.1, liveness: 10, logger: .silent)
        defer { c.close() }
        c.stopZAPHandlerForTesting()
        let w = try WorkerEndpoint(connect: c.boundEndpoint, hello: MessagingFixtures.hello(),
                                   curve: try KeyStore.loadClientKeys(directory: dir, name: "w", logger: .silent),
                                   heartbeatInterval: 0.1, logger: .silent)
        let runner = WorkerRunner(w) { .result(MessagingFixtures.result(for: $0)) }
        defer { w.stop(graceful: false); XCTAssertTrue(runner.join(timeout: 5)) }
        XCTAssertNil(try MessagingFixtures.receive(c, timeout: 0.8) { _ in true }, "admitted without a ZAP handler")
    }
}
