import PipelineJobs
import Prometheus

/// What the ledger knows, as Prometheus metrics: made afresh from one status snapshot per
/// scrape (a finished job's series stay while it is in the ledger; a deleted ledger's go).
public enum LedgerMetrics {
    // Computed: swift-prometheus' descriptor type is not Sendable, so no shared static instances.
    static var shards: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_shards", unitName: "",
                             helpText: "Shards of each job by state (pending, running, done, failed).")
    }
    static var items: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_job_items", unitName: "",
                             helpText: "Items a job is made of.")
    }
    static var itemsDone: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_items_done", unitName: "total",
                             helpText: "Items in a job's done shards.")
    }
    static var itemErrors: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_item_errors", unitName: "total",
                             helpText: "Items a job's workers could not process (per-item errors recorded).")
    }
    static var running: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_job_running", unitName: "",
                             helpText: "1 while a job is running, 0 once it ended (see the state label).")
    }
    static var workersKnown: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "dit_workers_known", unitName: "",
                             helpText: "Workers the ledger has seen, by whether the ledger has them connected.")
    }

    /// Prometheus text exposition of a snapshot.
    public static func exposition(_ r: JobStatusReport) -> [UInt8] {
        let reg = PrometheusCollectorRegistry()
        for j in r.jobs {
            let id = String(j.id)
            let states: [(String, Int)] = [("pending", j.pendingShards), ("running", j.runningShards),
                                           ("done", j.doneShards), ("failed", j.failedShards)]
            for (state, n) in states {
                reg.makeGauge(descriptor: shards, labels: [("job", id), ("kind", j.kind), ("state", state)]).set(to: Double(n))
            }
            let labels = [("job", id), ("kind", j.kind)]
            reg.makeGauge(descriptor: items, labels: labels).set(to: Double(j.totalItems))
            reg.makeCounter(descriptor: itemsDone, labels: labels).increment(by: Int64(j.doneItems))
            reg.makeCounter(descriptor: itemErrors, labels: labels).increment(by: Int64(j.itemErrorCount))
            reg.makeGauge(descriptor: running, labels: labels + [("state", j.state)])
                .set(to: j.state == JobState.running.rawValue ? 1 : 0)
        }
        let connected = r.workers.filter(\.connected).count
        reg.makeGauge(descriptor: workersKnown, labels: [("connected", "true")]).set(to: Double(connected))
        reg.makeGauge(descriptor: workersKnown, labels: [("connected", "false")]).set(to: Double(r.workers.count - connected))
        return reg.emitToBuffer()
    }
}
