import Metrics

/// What only the coordinator loop knows, recorded through swift-metrics: the executable
/// chooses the backend (the coordinator's `--http` bootstraps Prometheus, see
/// PipelineMonitoring); without one every call is a no-op. swift-metrics handlers are
/// thread-safe, so the loop never waits for a scrape.
public enum LoopMetric: String, CaseIterable, Sendable {
    case dispatches = "dit_dispatches_total"
    case heartbeats = "dit_heartbeats_total"
    case workersConnected = "dit_workers_connected"
    case shardDuration = "dit_shard_duration_seconds"
    case ledgerCommit = "dit_ledger_commit_seconds"

    public var help: String {
        switch self {
        case .dispatches: return "Shards leased to workers (ASSIGNs sent), by job kind."
        case .heartbeats: return "Heartbeats received from workers."
        case .workersConnected: return "Worker connections that said READY and have not left."
        case .shardDuration: return "Run time of accepted shards as the workers report it, by job kind."
        case .ledgerCommit: return "Ledger write transactions (one group commit may hold many transitions), by the job kinds they touched (kind=\"none\": no job)."
        }
    }
}

/// One swift-metrics handle per job kind, made on first use (loop thread only).
package final class PerKind<Handle> {
    private var made: [String: Handle] = [:]
    private let make: (String) -> Handle
    package init(_ make: @escaping (String) -> Handle) { self.make = make }
    package subscript(kind: String) -> Handle {
        if let h = made[kind] { return h }
        let h = make(kind)
        made[kind] = h
        return h
    }
}

extension PerKind where Handle == Counter {
    package convenience init(counter metric: LoopMetric) {
        self.init { Counter(label: metric.rawValue, dimensions: [("kind", $0)]) }
    }
}

extension PerKind where Handle == Metrics.Timer {
    package convenience init(timer metric: LoopMetric) {
        self.init { Metrics.Timer(label: metric.rawValue, dimensions: [("kind", $0)]) }
    }
}
