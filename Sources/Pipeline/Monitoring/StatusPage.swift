import Foundation
import PipelineJobs

/// The coordinator's status page: plain HTML and inline CSS, no scripts, nothing fetched from
/// elsewhere; it reloads itself (`<meta http-equiv=refresh>`) and reflows to one column on a phone.
public enum StatusPage {
    /// - Parameter imageJobs: jobs that have a sample grid at `/jobs/ID/grid.png`.
    public static func html(_ r: JobStatusReport, ledger: String, refreshSeconds: Int = 2, imageJobs: Set<Int64> = []) -> String {
        var h = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="refresh" content="\(refreshSeconds)">
        <title>dit-coordinator: \(running(r)) running</title>
        <style>\(css)</style></head><body>
        <header><h1>dit-coordinator</h1><p class="muted">ledger \(esc(ledger)) · \(esc(stamp(r.now))) · refreshes every \(refreshSeconds) s</p></header>

        """
        h += "<section><h2>Jobs</h2>\n"
        if r.jobs.isEmpty { h += "<p class=\"muted\">no jobs in the ledger</p>\n" }
        for j in r.jobs.reversed() { h += job(j, now: r.now, image: imageJobs.contains(j.id)) }
        h += "</section>\n<section><h2>Workers</h2>\n"
        let connected = r.workers.filter(\.connected)
        h += "<p>\(connected.count) connected, \(r.workers.count - connected.count) gone</p>\n"
        if !r.workers.isEmpty {
            h += "<div class=\"scroll\"><table><thead><tr><th>worker</th><th>host</th><th>threads</th><th>state</th>"
                + "<th>shards</th><th>items</th><th>items/s</th><th>last seen</th></tr></thead><tbody>\n"
            for w in r.workers.sorted(by: { ($0.connected ? 0 : 1, $0.id) < ($1.connected ? 0 : 1, $1.id) }) {
                h += "<tr class=\"\(w.connected ? "" : "gone")\"><td>\(esc(w.id))</td><td>\(esc(w.host))</td><td>\(w.threads)</td>"
                    + "<td>\(w.connected ? "connected" : "gone")</td><td>\(w.shardsDone)</td><td>\(w.itemsDone)</td>"
                    + "<td>\(fmt(w.itemsPerSecond))</td><td>\(JobStatusReport.duration(w.lastSeenSecondsAgo)) ago</td></tr>\n"
            }
            h += "</tbody></table></div>\n"
        }
        h += "</section>\n<section><h2>Latest item errors</h2>\n"
        if r.latestItemErrors.isEmpty { h += "<p class=\"muted\">none</p>\n" }
        for e in r.latestItemErrors {
            h += "<p class=\"err\"><b>job \(e.job) item \(e.item)</b> <code>\(esc(e.path))</code><br>\(esc(e.reason))</p>\n"
        }
        h += "</section>\n<footer class=\"muted\">JSON: <a href=\"/api/jobs\">/api/jobs</a> · Prometheus: <a href=\"/metrics\">/metrics</a></footer>\n"
        return h + "</body></html>\n"
    }

    static func job(_ j: JobStatusReport.Job, now: Double, image: Bool) -> String {
        let pct = j.progress * 100
        var h = "<article class=\"job \(esc(j.state))\"><h3>job \(j.id) · \(esc(j.kind)) <span class=\"state\">\(esc(j.state))</span></h3>\n"
        h += "<div class=\"bar\" role=\"progressbar\" aria-valuenow=\"\(Int(pct))\" aria-valuemin=\"0\" aria-valuemax=\"100\">"
            + "<div class=\"fill\" style=\"width:\(String(format: "%.2f", pct))%\"></div>"
            + "<span>\(String(format: "%.1f", pct))% · \(j.doneItems)/\(j.totalItems) items</span></div>\n"
        h += "<dl>"
        h += "<div><dt>shards done</dt><dd>\(j.doneShards)</dd></div><div><dt>running</dt><dd>\(j.runningShards)</dd></div>"
        h += "<div><dt>failed</dt><dd>\(j.failedShards)</dd></div><div><dt>pending</dt><dd>\(j.pendingShards)</dd></div>"
        h += "<div><dt>items/s</dt><dd>\(fmt(j.itemsPerSecond))</dd></div>"
        h += "<div><dt>ETA</dt><dd>\(j.etaSeconds.map(JobStatusReport.duration) ?? "–")</dd></div>"
        h += "<div><dt>age</dt><dd>\(JobStatusReport.duration(j.ageSeconds))</dd></div>"
        h += "<div><dt>item errors</dt><dd>\(j.itemErrorCount)</dd></div></dl>\n"
        h += "<p class=\"muted\">output <code>\(esc(j.outputDir))</code></p>\n"
        if let s = j.summary { h += "<p>\(esc(s))</p>\n" }
        for f in j.failures.prefix(10) { h += "<p class=\"err\">failed shard \(f.index): \(esc(f.reason))</p>\n" }
        if image {
            h += "<figure><img src=\"/jobs/\(j.id)/grid.png\" alt=\"latest samples of job \(j.id)\">"
                + "<figcaption class=\"muted\">latest samples</figcaption></figure>\n"
        }
        return h + "</article>\n"
    }

    static func running(_ r: JobStatusReport) -> Int { r.jobs.filter { $0.state == JobState.running.rawValue }.count }

    static func fmt(_ x: Double) -> String { x >= 100 ? String(format: "%.0f", x) : String(format: "%.2f", x) }

    static func stamp(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: t))
    }

    /// HTML text escaping (paths and error reasons come from workers).
    static func esc(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    static let css = """
    body{font:15px/1.4 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0 auto;max-width:60rem;padding:.8rem;color:#1b1f24;background:#fafafa}
    h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}h3{font-size:1rem;margin:0 0 .4rem}
    .muted{color:#667;font-size:.85rem}code{font-size:.85em;word-break:break-all}
    article{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.7rem;margin:.5rem 0}
    .state{font-weight:normal;font-size:.8rem;padding:.05rem .4rem;border-radius:3px;background:#e8eef8}
    .done .state{background:#dff3e2}.failed .state,.partially_failed .state{background:#fbe1e1}.cancelled .state{background:#eee}
    .bar{position:relative;height:1.4rem;background:#e6e8eb;border-radius:4px;overflow:hidden}
    .fill{position:absolute;top:0;left:0;bottom:0;background:#4a8fe7}.done .fill{background:#3fae5a}
    .bar span{position:relative;padding-left:.5rem;font-size:.85rem;line-height:1.4rem}
    dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(7rem,1fr));gap:.2rem .8rem;margin:.5rem 0}
    dl div{display:flex;justify-content:space-between;border-bottom:1px dotted #ddd}dt{color:#555}dd{margin:0;font-variant-numeric:tabular-nums}
    .scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem;background:#fff}
    th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;white-space:nowrap}tr.gone{color:#999}
    .err{background:#fff4f4;border-left:3px solid #d55;padding:.3rem .5rem;margin:.3rem 0;font-size:.9rem}
    img{max-width:100%;image-rendering:pixelated;border:1px solid #ccc}figure{margin:.5rem 0}
    """
}
