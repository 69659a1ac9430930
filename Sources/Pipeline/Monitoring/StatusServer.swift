import Foundation
import Hummingbird
import Logging
import NIOCore
import PipelineJobs
import Prometheus

/// The coordinator's read-only HTTP server (Hummingbird, on its own SwiftNIO threads):
/// `/` status page, `/api/jobs[/ID]` JSON (`JobStatusReport`, as `status --json`), `/metrics`
/// (Prometheus text) and `/jobs/ID/grid.png` (a sample job's latest samples).
///
/// It never slows the coordinator loop: every request reads the ledger through the server's
/// own read-only connection (`LedgerReader`; WAL readers do not block the writer), and the
/// loop's own counters are swift-metrics handles over Prometheus atomics (`LoopMetricsFactory`).
/// No lock is shared with the loop.
public final class StatusServer: @unchecked Sendable {
    public struct Options {
        public var address: HTTPAddress
        /// Required for a non-loopback address.
        public var token: BearerToken?
        public var refreshSeconds: Int
        public init(address: HTTPAddress, token: BearerToken? = nil, refreshSeconds: Int = 2) {
            self.address = address; self.token = token; self.refreshSeconds = refreshSeconds
        }
    }

    /// The address actually bound (the port chosen when 0 was asked for).
    public let boundAddress: HTTPAddress
    private let task: Task<Void, Never>
    private let finished = DispatchSemaphore(value: 0)

    /// Binds and starts serving; returns once the socket is bound (throws if it cannot be).
    /// - Parameter loopRegistry: the registry the loop's swift-metrics handles land in (nil: none).
    public init(ledgerPath: String, options: Options, loopRegistry: PrometheusCollectorRegistry?,
                logger: Logger = Logger(label: "dit.http")) throws {
        guard options.address.isLoopback || options.token != nil else { throw MonitoringError.tokenRequired(options.address) }
        let reader = try LedgerReader(path: ledgerPath)
        let routes = StatusRoutes(reader: reader, loopRegistry: loopRegistry, refreshSeconds: options.refreshSeconds)
        let router = Router()
        if let token = options.token { router.add(middleware: BearerAuthMiddleware(token: token)) }
        routes.register(on: router)

        let started = StartSignal()
        let app = Application(router: router,
                              configuration: .init(address: .hostname(options.address.host, port: options.address.port),
                                                   serverName: "dit-coordinator"),
                              onServerRunning: { channel in started.set(.success(channel.localAddress?.port ?? 0)) },
                              logger: logger)
        let done = finished
        task = Task.detached {
            do { try await app.run() } catch {
                started.set(.failure(error))
                logger.error("status server stopped: \(error)")
            }
            done.signal()
        }
        switch started.wait(timeout: 30) {
        case .success(let port)?:
            boundAddress = HTTPAddress(host: options.address.host, port: port)
        case .failure(let e)?:
            finished.wait()
            throw MonitoringError.startFailed(options.address, "\(e)")
        case nil:
            task.cancel()
            throw MonitoringError.startFailed(options.address, "not bound within 30 s")
        }
    }

    /// Stops serving (graceful: open requests finish) and waits a little for it.
    public func stop() {
        task.cancel()
        _ = finished.wait(timeout: .now() + 5)
    }
}

/// The first outcome of starting (bound port or error), handed from the server's task.
final class StartSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<Int, Error>?
    private let sem = DispatchSemaphore(value: 0)
    func set(_ v: Result<Int, Error>) {
        lock.lock(); defer { lock.unlock() }
        guard value == nil else { return }
        value = v
        sem.signal()
    }
    func wait(timeout seconds: Double) -> Result<Int, Error>? {
        _ = sem.wait(timeout: .now() + seconds)
        lock.lock(); defer { lock.unlock() }
        return value
    }
}

/// `401 Unauthorized` unless the request carries the bearer token.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: BearerToken
    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard token.accepts(authorization: request.headers[.authorization]) else {
            return Response(status: .unauthorized,
                            headers: [.wwwAuthenticate: "Bearer realm=\"dit-coordinator\"", .contentType: "text/plain; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: "401 Unauthorized: send Authorization: Bearer TOKEN\n")))
        }
        return try await next(request, context)
    }
}
