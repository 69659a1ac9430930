import Foundation
import Hummingbird
import PipelineImaging
import PipelineJobs
import Prometheus

/// The handlers of `StatusServer`; each reads one snapshot through the server's own connection.
struct StatusRoutes: Sendable {
    let reader: LedgerReader
    let loopRegistry: PrometheusCollectorRegistry?
    let refreshSeconds: Int
    /// Sample grids shown: the latest this many samples.
    static let gridSamples = 16
    private let grids = GridCache()

    init(reader: LedgerReader, loopRegistry: PrometheusCollectorRegistry?, refreshSeconds: Int) {
        self.reader = reader; self.loopRegistry = loopRegistry; self.refreshSeconds = refreshSeconds
    }

    func register(on router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in try page() }
        router.get("/api/jobs") { _, _ in try json(reader.status()) }
        router.get("/api/jobs/:id") { _, context in
            let id = try jobId(context)
            do { return try json(reader.status(jobId: id)) } catch JobError.unknownJob {
                throw HTTPError(.notFound, message: "no job \(id) in the ledger")
            }
        }
        router.get("/metrics") { _, _ in try metrics() }
        router.get("/jobs/:id/grid.png") { _, context in try grid(jobId: try jobId(context)) }
    }

    func jobId(_ context: BasicRequestContext) throws -> Int64 {
        guard let id = context.parameters.get("id", as: Int64.self) else {
            throw HTTPError(.badRequest, message: "a job id is a number")
        }
        return id
    }

    func page() throws -> Response {
        let r = try reader.status()
        var images: Set<Int64> = []
        for j in r.jobs where j.kind == "sample" {
            if try !reader.latestImages(jobId: j.id, count: 1).isEmpty { images.insert(j.id) }
        }
        let html = StatusPage.html(r, ledger: reader.path, refreshSeconds: refreshSeconds, imageJobs: images)
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func json(_ r: JobStatusReport) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try r.json())))
    }

    func metrics() throws -> Response {
        var bytes = loopRegistry?.emitToBuffer() ?? []
        bytes += LedgerMetrics.exposition(try reader.status(maxItemErrors: 0))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func grid(jobId: Int64) throws -> Response {
        let paths: [String]
        do { paths = try reader.latestImages(jobId: jobId, count: Self.gridSamples) } catch JobError.unknownJob {
            throw HTTPError(.notFound, message: "no job \(jobId) in the ledger")
        }
        guard !paths.isEmpty else { throw HTTPError(.notFound, message: "job \(jobId) has no sample images yet") }
        let png = try grids.png(for: paths) {
            // Small samples are enlarged so that the sheet is at least ~256 px wide.
            let first = try ImageDecoder.decode(path: paths[0])
            let scale = max(1, min(8, 64 / max(first.width, 1)))
            return try PNGWriter.encode(SampleSheet.make(paths: paths, nrow: 4, padding: 2, scale: scale))
        }
        return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: png)))
    }
}

/// The last sample grid made, keyed by the files it shows (made again only when they change).
final class GridCache: @unchecked Sendable {
    private let lock = NSLock()
    private var last: (key: [String], png: Data)?
    func png(for key: [String], make: () throws -> Data) throws -> Data {
        lock.lock()
        if let l = last, l.key == key { lock.unlock(); return l.png }
        lock.unlock()
        let png = try make()
        lock.lock(); last = (key, png); lock.unlock()
        return png
    }
}
