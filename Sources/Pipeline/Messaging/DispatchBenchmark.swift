import Foundation

/// The messaging layer's own ceiling: no-op shards dispatched over loopback
/// between one CoordinatorEndpoint and `workers` in-process WorkerEndpoints
/// (each on its own socket and threads, as separate processes would be).
/// No ledger: the jobs layer's bench adds that cost on top.
public enum DispatchBenchmark {
    public struct Figures: CustomStringConvertible {
        public var workers: Int
        public var credits: Int
        public var shards: Int
        public var seconds: Double
        public var perSecond: Double { Double(shards) / seconds }
        public var description: String {
            String(format: "%d no-op shards, %d workers x %d credits: %.3f s, %.0f dispatches/s", shards, workers, credits, seconds, perSecond)
        }
    }

    public static func run(workers: Int = 8, credits: Int = 2, shards: Int = 20_000,
                           endpoint: String = "tcp://127.0.0.1:0") throws -> Figures {
        let c = try CoordinatorEndpoint(bind: endpoint, curve: nil, logger: .silent)
        defer { c.close() }
        var endpoints: [WorkerEndpoint] = []
        let finished = DispatchGroup()
        for i in 0..<workers {
            let w = try WorkerEndpoint(connect: c.boundEndpoint,
                                       hello: WorkerHello(workerId: "bench-\(i)", hostname: "localhost", pid: getpid(), threads: 1),
                                       curve: nil, credits: credits, logger: .silent)
            endpoints.append(w)
            finished.enter()
            let t = Thread {
                _ = try? w.run { a in
                    .result(ShardResult(jobId: a.jobId, shardId: a.shardId, attempt: a.attempt, outputs: []))
                }
                finished.leave()
            }
            t.start()
        }
        defer {
            for w in endpoints { w.stop(graceful: false) }
            _ = finished.wait(timeout: .now() + 10)
        }
        var next: Int64 = 0
        var done = 0
        var start = 0.0
        var readyPeers = 0
        let payload = Data(#"{"first":0,"count":1}"#.utf8)
        while done < shards {
            guard let (peer, message) = try c.receive(timeout: 10) else {
                throw MessagingError.invalidUse("benchmark stalled after \(done) shards")
            }
            switch message {
            case .ready:
                readyPeers += 1
                if readyPeers == workers { start = monotonicNow() }
            case .request(let n):
                for _ in 0..<n where next < Int64(shards) {
                    try c.send(.assign(Assignment(jobId: 1, shardId: next, attempt: 1, kind: "noop", payload: payload)), to: peer)
                    next += 1
                }
            case .result(let r):
                // Every report is acknowledged, as the coordinator does (DITP/1 revision 2).
                try c.send(.ack(Acknowledgement(jobId: r.jobId, shardId: r.shardId, attempt: r.attempt, verdict: .recorded)), to: peer)
                done += 1
            default: break
            }
        }
        return Figures(workers: workers, credits: credits, shards: shards, seconds: monotonicNow() - start)
    }
}
