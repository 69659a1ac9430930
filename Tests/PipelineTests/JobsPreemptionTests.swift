import Foundation
import XCTest
@testable import PipelineDiffusion
@testable import PipelineJobs
@testable import PipelineMessaging

/// Preemption does not use up attempts: a shard a worker abandons on SIGTERM is released
/// without counting toward max attempts (as Slurm does not count a preempted job's requeues);
/// a shard whose worker crashes, or that fails, still counts. And abandoning is prompt: the
/// sampler sees the stop between two steps' model calls, not only after a whole batch.
final class JobsPreemptionTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("jobs-preempt") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func job(_ ledger: Ledger, maxAttempts: Int) throws -> Int64 {
        let spec = try JobKinds.encode(SyntheticSpec(outputDir: dir + "/out", items: 2, itemsPerShard: 2))
        return try ledger.createJob(kind: "synthetic", spec: spec, plan: try SyntheticKind().plan(spec: spec), maxAttempts: maxAttempts)
    }

    func testAbandonedShardsAreReleasedWithoutUsingUpAttempts() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let job = try job(ledger, maxAttempts: 2)
        // Preempted five times in a row: never failed, each time back to pending.
        for k in 1...5 {
            _ = try core.handle(.hello("p\(k)", workerId: "w\(k)", host: "h", pid: k, threads: 1))
            let grant = try XCTUnwrap(try core.handle(.request("p\(k)", credits: 1)).first?.1)
            XCTAssertEqual(grant.attempt, k)
            XCTAssertTrue(try core.handle(.abandoned("p\(k)", jobId: job, shardId: grant.shardId, attempt: grant.attempt,
                                                      reason: "shard abandoned (worker stopping)")).isEmpty)
            XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.pending], "after preemption \(k)")
            XCTAssertEqual(core.takeReportAcks().map(\.verdict), [.recorded])
            // The worker then leaves (DISCONNECT): nothing held, nothing counted.
            _ = try core.handle(.gone("p\(k)", reason: "disconnected"))
        }
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: 0).map(\.outcome), Array(repeating: AttemptOutcome.released, count: 5))
        // A re-sent abandoned report is a duplicate, not a second release.
        _ = try core.handle(.hello("q", workerId: "wq", host: "h", pid: 9, threads: 1))
        _ = try core.handle(.abandoned("q", jobId: job, shardId: 1, attempt: 5, reason: "again"))
        XCTAssertEqual(core.takeReportAcks().map(\.verdict), [.duplicate])
        // Two real failures use up the two attempts.
        for k in 0..<2 {
            let grant = try XCTUnwrap(try core.handle(.request("q", credits: 1)).first?.1)
            _ = try core.handle(.failed("q", jobId: job, shardId: grant.shardId, attempt: grant.attempt,
                                        reason: "disk full", retryable: true))
            XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [k == 0 ? .pending : .failed])
        }
    }

    func testACrashedWorkerStillUsesAnAttemptAfterPreemptions() throws {
        let ledger = try Ledger(path: dir + "/l.sqlite")
        let core = CoordinatorCore<String>(ledger: ledger)
        let job = try job(ledger, maxAttempts: 1)
        _ = try core.handle(.hello("a", workerId: "wa", host: "h", pid: 1, threads: 1))
        let first = try XCTUnwrap(try core.handle(.request("a", credits: 1)).first?.1)
        _ = try core.handle(.abandoned("a", jobId: job, shardId: first.shardId, attempt: first.attempt, reason: "SIGTERM"))
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.pending], "preemption: not counted")
        let second = try XCTUnwrap(try core.handle(.request("a", credits: 1)).first?.1)
        XCTAssertEqual(second.attempt, 2)
        _ = try core.handle(.gone("a", reason: "silent for 3 heartbeats"))   // the worker crashed on it
        XCTAssertEqual(try ledger.shardCompletions(jobId: job).map(\.state), [.failed], "a crash counts")
        XCTAssertEqual(try ledger.attempts(jobId: job, shardIndex: 0).map(\.outcome), [.released, .released])
    }

    /// The wire: a worker's stop-time FAILED carries `abandoned`, and the coordinator maps it so.
    func testStoppingWorkersReportAbandonedOnTheWire() throws {
        let a = Assignment(jobId: 1, shardId: 2, attempt: 3, kind: "synthetic", payload: Data())
        let f = ShardFailure.stopping(a, reason: "abandoned: worker stopping")
        let decoded = try WireCodec.decode(try WireCodec.encode(.failed(f)))
        XCTAssertEqual(decoded, .failed(f))
        guard case .abandoned(_, 1, 2, 3, _)? = CoordinatorService.input(peer: PeerID(bytes: [1]), message: decoded) else {
            return XCTFail("an abandoned FAILED must reach the core as .abandoned")
        }
        // A revision-2 FAILED (no `abandoned` key) is an ordinary failure.
        let old = Data(#"{"jobId":1,"shardId":2,"attempt":3,"reason":"x","retryable":true}"#.utf8)
        let legacy = try WireCodec.decode([[], Array(WireCodec.version.utf8), [WireCommand.failed.rawValue], Array(old)])
        guard case .failed(_, 1, 2, 3, "x", true)? = CoordinatorService.input(peer: PeerID(bytes: [1]), message: legacy) else {
            return XCTFail("a FAILED without `abandoned` counts")
        }
        // The shard runner tells an abandoned shard from a failed one.
        XCTAssertEqual(WorkOutcome(.abandoned(reason: "r"), for: a), .failed(.stopping(a, reason: "r")))
        XCTAssertEqual(WorkOutcome(.failed(reason: "r", retryable: true), for: a),
                       .failed(ShardFailure(jobId: 1, shardId: 2, attempt: 3, reason: "r", retryable: true)))
    }

    /// The sampler looks at the stop flag after every step: a long batch is given up after
    /// the step in progress, not at its end.
    func testSamplerStopsBetweenStepsInsideOneBatch() throws {
        let dit = try DiTModelSpec(parsing: try Fixtures.require("dit/tiny/weights.safetensors")).load(configFile: nil, numHeads: nil, imageSize: 256)
        let engine = try SampleEngine.standard(model: dit, settings: SamplerSettings(kind: .ddim, cfgScale: 1),
                                               steps: 50, seed: 1, labels: .uniform, total: 4)
        var steps = 0
        var batches = 0
        XCTAssertThrowsError(try engine.generate(indices: [0, 1, 2, 3], batchSize: 4, progress: { _ in steps += 1 },
                                                 checkpoint: { if steps == 3 { throw JobError.cancelled } },
                                                 onBatch: { _, _, _ in batches += 1 })) { error in
            XCTAssertEqual(error as? JobError, .cancelled)
        }
        XCTAssertEqual(steps, 3, "stopped after the third of 50 steps")
        XCTAssertEqual(batches, 0)
    }

    /// The sample executor passes its stop flag to the sampler: a one-batch shard of many
    /// steps asked to stop ends abandoned, with no output, long before its steps are done.
    func testSampleShardIsAbandonedMidBatch() throws {
        let spec = SampleSpec(outputDir: dir + "/out", dit: try Fixtures.require("dit/tiny/weights.safetensors"),
                              numSamples: 64, seed: 0, cfgScale: 1, sampler: "ddpm", steps: 1000, batch: 64, samplesPerShard: 64)
        let data = try JobKinds.encode(spec)
        let plan = try SampleKind().plan(spec: data)
        let task = ShardTask(kind: "sample", jobId: 1, shardIndex: 0, itemStart: 0, itemEnd: 64, outputDir: spec.outputDir,
                             jobSpec: data, shardSpec: plan.shards[0].spec)
        let runner = ShardRunner()
        final class Box: @unchecked Sendable { var outcome: ShardRunner.Outcome? }
        let box = Box()
        let done = expectation(description: "shard ended")
        DispatchQueue.global().async { box.outcome = runner.run(task); done.fulfill() }
        usleep(300_000)
        runner.abandonRunning()
        // One batch of 64 samples x 1000 DDPM steps takes seconds; the stop is seen after the step in progress.
        wait(for: [done], timeout: 10)
        XCTAssertEqual(box.outcome, .abandoned(reason: JobError.cancelled.description))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/labels"))
    }
}
