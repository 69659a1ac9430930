import Foundation
import XCTest
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineJobs

/// The Slurm recipes on a real Slurm: a private single-node cluster (SlurmLab:
/// slurmctld + slurmd + munged, ProctrackType=proctrack/linuxproc, select/cons_tres) runs
/// `deploy/slurm/dit-job.sbatch` and `deploy/slurm/dit-workers.sbatch` exactly as
/// deploy/README.md tells users to submit them. The scratch folder plays the shared file
/// system; the job's binaries are the ones built next to the tests (DIT_BIN).
final class SlurmRecipeTests: ProcessTestCase {
    private var lab: SlurmLab?

    override func tearDown() {
        if let lab {
            let (status, log) = lab.stop()
            XCTAssertEqual(status, 0, "the Slurm lab must stop cleanly, leaving nothing behind: \(log)")
        }
        lab = nil
        super.tearDown()
    }

    private var shared: String { dir + "/shared" }
    private var recipe: String { MultiHostNetnsTests.repoRoot + "/deploy/slurm/dit-job.sbatch" }
    private var workersRecipe: String { MultiHostNetnsTests.repoRoot + "/deploy/slurm/dit-workers.sbatch" }

    private func startLab() throws -> SlurmLab {
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: true)
        let l = try SlurmLab(dir: dir)
        lab = l
        return l
    }

    /// What the job needs from the environment: the binaries built here and a free port.
    private func jobEnvironment(port: Int) -> [String: String] {
        ["DIT_BIN": Self.products, "DIT_PORT": "\(port)"]
    }

    private func jobLog(_ id: Int) -> String {
        (try? String(contentsOfFile: shared + "/dit-\(id).log", encoding: .utf8)) ?? ""
    }

    /// `cd SHARED && sbatch --nodes=1 --ntasks-per-node=N --cpus-per-task=1 dit-job.sbatch KIND ...`, as in deploy/README.md.
    private func submitRecipe(_ lab: SlurmLab, _ kindAndFlags: [String], tasks: Int = 2, port: Int) throws -> Int {
        try lab.sbatch(["--nodes=1", "--ntasks-per-node=\(tasks)", "--cpus-per-task=1", recipe] + kindAndFlags,
                       cwd: shared, env: jobEnvironment(port: port))
    }

    private func sampleFlags(samples: Int, steps: Int, sampler: String = "ddim", perShard: Int) throws -> [String] {
        ["--dit", try Fixtures.require("dit/tiny/weights.safetensors"), "--vae", try Fixtures.require("vae/tiny"),
         "--num-samples", "\(samples)", "--seed", "3", "--cfg-scale", "1.5", "--sampler", sampler, "--steps", "\(steps)",
         "--labels", "uniform", "--batch", "\(perShard)", "--samples-per-shard", "\(perShard)"]
    }

    /// The same job through `dit-coordinator run` (one worker, one thread, as the Slurm tasks).
    private func embeddedReference(_ kind: String, _ flags: [String], name: String) throws -> [String: Data] {
        let out = dir + "/reference-" + name
        let (status, log) = try runToEnd("dit-coordinator", ["run", kind] + flags
            + ["--out", out, "--workers", "1", "--threads", "1", "--ledger", dir + "/reference-\(name).sqlite"], timeout: 240)
        XCTAssertEqual(status, 0, log)
        return try tree(out)
    }

    /// A sample job (DiT + VAE: PNGs and the ADM .npz) and an encode job (ImageFolder to
    /// latent shards) submitted with the recipe give the bytes `dit-coordinator run` gives.
    func testSampleAndEncodeJobsThroughTheRecipeEqualRun() throws {
        let lab = try startLab()
        let port = try freePort()

        let sample = try sampleFlags(samples: 6, steps: 4, perShard: 2)
        let sampleJob = try submitRecipe(lab, ["sample"] + sample + ["--out", shared + "/sample"], port: port)
        XCTAssertEqual(try lab.wait(for: "\(sampleJob)", ["COMPLETED", "FAILED", "CANCELLED"], timeout: 240), "COMPLETED",
                       jobLog(sampleJob))
        XCTAssertTrue(jobLog(sampleJob).contains("no job left running"), jobLog(sampleJob))

        let images = shared + "/images"
        for (c, cls) in ["cat", "dog"].enumerated() {
            try FileManager.default.createDirectory(atPath: "\(images)/\(cls)", withIntermediateDirectories: true)
            for i in 0..<4 {
                let pixels = (0..<(20 * 24 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (5 + i) &+ c * 70) }
                try PNGWriter.write(try ImageRGB8(width: 24, height: 20, pixels: pixels), to: "\(images)/\(cls)/\(i).png")
            }
        }
        let encode = ["--folder", images, "--vae", try Fixtures.require("vae/tiny"), "--image-size", "16", "--flip",
                      "--images-per-shard", "3", "--batch", "2", "--layout", "fast-dit", "--seed", "5"]
        let encodeJob = try submitRecipe(lab, ["encode"] + encode + ["--out", shared + "/encode"], port: port)
        XCTAssertEqual(try lab.wait(for: "\(encodeJob)", ["COMPLETED", "FAILED", "CANCELLED"], timeout: 240), "COMPLETED",
                       jobLog(encodeJob))

        // Both jobs are in the one ledger on the shared folder, done, every shard once.
        try assertExactlyOnce(shared + "/ledger.sqlite", job: 1)
        try assertExactlyOnce(shared + "/ledger.sqlite", job: 2)
        let sampleTree = try tree(shared + "/sample")
        XCTAssertNotNil(sampleTree["samples_6x16x16x3.npz"])
        XCTAssertEqual(sampleTree, try embeddedReference("sample", sample, name: "sample"))
        let encodeTree = try tree(shared + "/encode")
        XCTAssertNotNil(encodeTree["features/0.npy"])
        XCTAssertEqual(encodeTree, try embeddedReference("encode", encode, name: "encode"))
    }

    /// `scontrol requeue` while shards run: the script's SIGTERM path stops the workers (they
    /// abandon their shards mid-batch and report them) and then the coordinator; the requeued
    /// allocation resumes the same job, which ends done with the bytes of `run`. With
    /// --max-attempts 1, only a preemption that uses up no attempt lets the job finish.
    func testRequeueMidJobResumesAndEndsDoneByteIdentical() throws {
        let lab = try startLab()
        let port = try freePort()
        // 8 shards of one sampler batch each (3 samples, 500 DDPM steps): caught mid-batch.
        let flags = try sampleFlags(samples: 24, steps: 500, sampler: "ddpm", perShard: 3) + ["--max-attempts", "1"]
        let job = try submitRecipe(lab, ["sample"] + flags + ["--out", shared + "/out"], port: port)
        let ledgerPath = shared + "/ledger.sqlite"
        try lab.wait(for: "\(job)", ["RUNNING"], timeout: 60)
        try waitFor("a shard done and two running", timeout: 120) {
            guard FileManager.default.fileExists(atPath: ledgerPath) else { return false }
            let l = try Ledger(path: ledgerPath)
            guard (try? l.jobState(1)) != nil else { return false }
            let states = try l.shardCompletions(jobId: 1).map(\.state)
            return states.contains(.done) && states.filter { $0 == .leased }.count == 2
        }
        let l = try Ledger(path: ledgerPath)
        let doneBefore = try l.shardCompletions(jobId: 1).filter { $0.state == .done }.map(\.index)
        XCTAssertLessThan(doneBefore.count, 8, "requeued mid-job")

        XCTAssertEqual(try lab.run("scontrol", ["requeue", "\(job)"]).status, 0)
        // The allocation ends within seconds (Slurm would SIGKILL after KillWait=30 s), and the job waits to run again.
        try lab.wait(for: "\(job)", ["PENDING"], timeout: 28)
        let firstRun = jobLog(job)
        XCTAssertTrue(firstRun.contains("stopping (SIGTERM)"), firstRun)
        XCTAssertTrue(firstRun.contains("drained: no connected worker holds a lease"), firstRun)
        let released = try (0..<8).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }.filter { $0.outcome == .released }
        XCTAssertFalse(released.isEmpty, "the running shards were abandoned and reported")
        XCTAssertTrue(released.allSatisfy { $0.reason?.contains("abandoned") ?? false }, "\(released)")
        XCTAssertFalse(try l.shardCompletions(jobId: 1).contains { $0.state == .failed }, "preemption used up no attempt")

        // A requeued job waits for its old credential to expire (the lab's cred_expire, 10 s) and
        // then starts again by itself.
        XCTAssertEqual(try lab.wait(for: "\(job)", ["COMPLETED", "FAILED", "CANCELLED"], timeout: 240), "COMPLETED", jobLog(job))
        // One log for both runs (--open-mode=append): the first one's SIGTERM path, the second one's resume.
        XCTAssertTrue(jobLog(job).contains("same job already in the ledger: 1"), jobLog(job))
        XCTAssertTrue(jobLog(job).contains("stopping (SIGTERM)"), jobLog(job))
        try assertExactlyOnce(ledgerPath)
        for i in doneBefore {
            let attempts = try l.attempts(jobId: 1, shardIndex: i)
            XCTAssertEqual(attempts.filter { $0.outcome == .done }.count, 1, "shard \(i) not redone: \(attempts)")
            XCTAssertEqual(attempts.last?.outcome, .done, "shard \(i) not leased again after it was done")
        }
        XCTAssertEqual(try tree(shared + "/out"), try embeddedReference("sample", flags, name: "requeue"))
    }

    /// Workers as Slurm jobs of their own (dit-workers.sbatch, a job array) join a coordinator
    /// already serving on a "service node" (here: a process of the test, its ledger on its own
    /// disk); jobs go to it over CONTROL with a CURVE key. Mid-run one worker job is scancelled
    /// (its shard is abandoned and released without using up an attempt) and another submitted.
    func testWorkerJobsJoinAndLeaveARunningCoordinator() throws {
        let lab = try startLab()
        let port = try freePort()
        let keys = shared + "/keys"
        XCTAssertEqual(try runToEnd("dit-coordinator", ["keygen", "--out", keys, "--worker", "worker"]).0, 0)
        let ledger = dir + "/service-node/ledger.sqlite"
        try FileManager.default.createDirectory(atPath: dir + "/service-node", withIntermediateDirectories: true)
        let coordinator = try start("dit-coordinator", ["serve", "--ledger", ledger, "--bind", "tcp://*:\(port)", "--keys", keys],
                                    log: "coordinator.log")
        let endpoint = "tcp://\(lab.node):\(port)"
        // 40 shards of 4 items x 120 ms: ~10 s of work for two workers.
        let spec = SyntheticSpec(outputDir: shared + "/out", items: 160, itemsPerShard: 4, seed: 4, bytesPerItem: 300,
                                 millisPerItem: 120)
        let control = ["--coordinator", endpoint, "--keys", keys, "--key-name", "worker"]
        try waitFor("the coordinator to bind and record its endpoint", timeout: 20) {
            LedgerLock.Holder.parse((try? String(contentsOfFile: ledger + ".lock", encoding: .utf8)) ?? "")?.endpoint != nil
        }
        // The ledger is the coordinator's: opening it directly is refused, naming the way in.
        let (refused, why) = try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec) + ["--ledger", ledger])
        XCTAssertNotEqual(refused, 0)
        XCTAssertTrue(why.contains("in use by serve pid \(coordinator.processIdentifier)") && why.contains("--coordinator tcp://"), why)
        let (submitted, submitLog) = try runToEnd("dit-coordinator", ["submit", "synthetic"] + syntheticArgs(spec)
                                                  + ["--max-attempts", "1"] + control)
        XCTAssertEqual(submitted, 0, submitLog)
        XCTAssertTrue(submitLog.hasSuffix("1\n"), submitLog)

        let array = try lab.sbatch(["--array=0-1", "--ntasks=1", "--cpus-per-task=1", workersRecipe, endpoint], cwd: shared,
                                   env: ["DIT_BIN": Self.products])
        let l = try Ledger(path: ledger)
        let first = "\(array)_0"
        try waitFor("both worker jobs to hold shards", timeout: 90) { try l.leaseHolders().count == 2 }
        try waitFor("some shards done", timeout: 60) { try l.shardCompletions(jobId: 1).filter { $0.state == .done }.count >= 4 }
        // Take one worker away (scancel: SIGTERM to its processes) and add another.
        XCTAssertEqual(try lab.run("scancel", [first]).status, 0)
        try lab.wait(for: first, ["CANCELLED"], timeout: 30)
        let extra = try lab.sbatch(["--ntasks=1", "--cpus-per-task=1", workersRecipe, endpoint], cwd: shared,
                                   env: ["DIT_BIN": Self.products])
        try waitFor("the added worker to take shards", timeout: 60) { try JobStatusReport.load(ledger: l).workers.count >= 3 }
        try waitFor("the job to finish", timeout: 120) { try l.jobState(1).isFinished }
        try assertExactlyOnce(ledger)
        XCTAssertEqual(try tree(spec.outputDir), try reference(spec))
        let attempts = try (0..<40).flatMap { try l.attempts(jobId: 1, shardIndex: $0) }
        XCTAssertFalse(attempts.contains { $0.outcome == .failed }, "\(attempts.filter { $0.outcome != .done })")

        let (st, status) = try runToEnd("dit-coordinator", ["status"] + control)
        XCTAssertEqual(st, 0, status)
        XCTAssertTrue(status.contains("done"), status)
        // The remaining worker jobs leave when cancelled; the service-node coordinator on SIGTERM.
        XCTAssertEqual(try lab.run("scancel", ["\(array)", "\(extra)"]).status, 0)
        for j in ["\(array)_1", "\(extra)"] { try lab.wait(for: j, ["CANCELLED", "COMPLETED"], timeout: 30) }
        coordinator.terminate()
        try waitFor("the coordinator to exit", timeout: 10) { !coordinator.isRunning }
        // The ledger is free again: read it directly.
        let (st2, direct) = try runToEnd("dit-coordinator", ["status", "1", "--ledger", ledger])
        XCTAssertEqual(st2, 0, direct)
    }
}
