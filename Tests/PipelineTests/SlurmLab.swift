import Foundation
import XCTest

/// A private single-node Slurm for one test: `deploy/test/slurm-lab.sh` in the test's scratch
/// folder (its own munge key and munged, slurm.conf, state, spool and logs; slurmctld and
/// slurmd in the foreground as the script's children). `stop()` cancels the cluster's jobs
/// and ends the daemons and whatever they started, by their recorded pids and the
/// DIT_SLURM_LAB marker; if the test process dies instead, the script's standard input
/// closes and it does the same. Slurm's client commands reach it through SLURM_CONF.
final class SlurmLab {
    let dir: String
    private(set) var conf = ""
    private(set) var node = ""
    private let process = Process()
    private let input = Pipe()
    private var logPath: String { dir + "/slurm-lab.log" }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Starts the cluster in `dir`; skips the test (with the script's reason) only when this
    /// machine cannot run slurmd at all (exit status 77: munged, slurmctld or slurmd did not come up).
    init(dir: String) throws {
        self.dir = dir
        let script = MultiHostNetnsTests.repoRoot + "/deploy/test/slurm-lab.sh"
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script, dir + "/cluster"]
        process.standardInput = input
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = h
        process.standardError = h
        try process.run()
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline {
            let text = log
            if text.contains("ready\n") {
                for line in text.split(separator: "\n") {
                    if line.hasPrefix("conf ") { conf = String(line.dropFirst(5)) }
                    if line.hasPrefix("node ") { node = String(line.dropFirst(5)) }
                }
                return
            }
            if !process.isRunning {
                process.waitUntilExit()
                if process.terminationStatus == 77 { throw XCTSkip("this machine cannot run slurmd: \(text)") }
                break
            }
            usleep(50_000)
        }
        _ = stop()
        XCTFail("the Slurm lab did not come up: \(log)")
        throw CocoaError(.userCancelled)
    }

    /// Ends the cluster; returns the script's exit status and log.
    func stop() -> (status: Int32, log: String) {
        if process.isRunning {
            try? input.fileHandleForWriting.close()
            let deadline = Date().addingTimeInterval(90)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { process.terminate() }
        }
        process.waitUntilExit()
        return (process.terminationStatus, log)
    }

    /// The environment of Slurm's client commands, and so of the jobs they submit (sbatch
    /// exports it): SLURM_CONF, the lab's marker, no SLURM_* of an enclosing allocation.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SLURM_") }
        env["SLURM_CONF"] = conf
        env["DIT_SLURM_LAB"] = dir + "/cluster"
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs a Slurm client command (sbatch, scontrol, squeue, scancel) to its end.
    @discardableResult
    func run(_ command: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try ProcessCapture.run("/usr/bin/env", [command] + args, cwd: cwd, environment: environment(env))
    }

    /// `sbatch ARGS` in `cwd`; returns the job id.
    func sbatch(_ args: [String], cwd: String, env: [String: String] = [:]) throws -> Int {
        let (status, output) = try run("sbatch", args, cwd: cwd, env: env)
        guard status == 0, let id = output.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            XCTFail("sbatch \(args) failed (\(status)): \(output)")
            throw CocoaError(.userCancelled)
        }
        return id
    }

    /// A job's (or array task's, "ID_N") state as slurmctld has it: PENDING, RUNNING, COMPLETED, ...
    func state(_ job: String) throws -> String {
        let (_, output) = try run("scontrol", ["show", "job", "-o", job])
        guard let r = output.range(of: "JobState=") else { return "" }
        return String(output[r.upperBound...].prefix { !$0.isWhitespace })
    }

    /// Waits until the job is in one of `states`; returns that state.
    @discardableResult
    func wait(for job: String, _ states: Set<String>, timeout: Double) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try state(job)
            if states.contains(last) { return last }
            usleep(200_000)
        }
        XCTFail("job \(job) still \(last) after \(timeout) s, not \(states.sorted()); slurmctld: \(tail(dir + "/cluster/log/slurmctld.log"))")
        throw CocoaError(.userCancelled)
    }

    func tail(_ path: String, lines: Int = 30) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}
