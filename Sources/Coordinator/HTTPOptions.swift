import ArgumentParser
import Foundation
import Logging
import PipelineJobs
import PipelineMonitoring

/// `--http ADDR:PORT` / `--http-token-file FILE`: the read-only status server (PipelineMonitoring).
struct HTTPOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve the status page, /api/jobs and /metrics on HOST:PORT (or PORT: loopback; 0 picks a free port).",
                               valueName: "addr:port"))
    var http: String?
    @Option(help: "File holding the bearer token HTTP clients must send; required unless --http is a loopback address.")
    var httpTokenFile: String?

    func validate() throws {
        if httpTokenFile != nil && http == nil { throw ValidationError("--http-token-file needs --http") }
        if let http {
            let a = try HTTPAddress(parsing: http)
            if !a.isLoopback && httpTokenFile == nil { throw ValidationError(MonitoringError.tokenRequired(a).description) }
        }
    }

    /// Makes the loop's swift-metrics handles land in a Prometheus registry; call before the
    /// coordinator loop starts. Nil without --http (swift-metrics stays a no-op).
    func bootstrapMetrics() -> LoopMetricsFactory? {
        http == nil ? nil : LoopMetricsFactory.bootstrap()
    }

    /// Starts the status server on a ledger (nil without --http).
    func start(ledgerPath: String, metrics: LoopMetricsFactory?, logger: Logger) throws -> StatusServer? {
        guard let http else { return nil }
        let options = StatusServer.Options(address: try HTTPAddress(parsing: http),
                                           token: try httpTokenFile.map { try BearerToken(file: $0) })
        let server = try StatusServer(ledgerPath: ledgerPath, options: options, loopRegistry: metrics?.registry,
                                      logger: Logger(label: "dit.http"))
        logger.notice("status page on http://\(server.boundAddress)/",
                      metadata: ["http": "\(server.boundAddress)", "auth": "\(options.token == nil ? "none" : "bearer")"])
        return server
    }
}
