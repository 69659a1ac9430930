import Foundation

/// Worker side: runs assigned shards with one long-lived executor per kind (models stay
/// loaded across shards), turning every outcome into a report or a failure with a reason.
/// Sendable by hand: `executors` and `running` are guarded by `lock`, and the executors are
/// safe with several shards at once (models shared through a locked `ModelCache`; checked by
/// `JobsConcurrentShardsTests`, `--credits 3`, under the thread sanitizer).
public final class ShardRunner: @unchecked Sendable {
    public enum Outcome: Equatable {
        case done(ShardReport, elapsed: Double)
        case failed(reason: String, retryable: Bool)
        /// Stopped on request (`abandonRunning`: SIGTERM) before it finished: not the shard's fault.
        case abandoned(reason: String)
    }

    public let threads: Int
    private var executors: [String: ShardExecutor] = [:]
    private let lock = NSLock()
    private var running: [ObjectIdentifier: ShardControl] = [:]

    public init(threads: Int = 1) { self.threads = threads }

    /// Kinds this worker can run (READY capabilities).
    public var capabilities: [String] { JobKinds.all.map(\.name) }
    public var cachedModels: [String] { lock.lock(); defer { lock.unlock() }; return executors.values.flatMap(\.cachedModels) }

    /// Decodes an ASSIGN payload (a `ShardTask`, JSON) and runs it.
    public func run(kind: String, payload: Data) -> Outcome {
        let task: ShardTask
        do { task = try JSONDecoder().decode(ShardTask.self, from: payload) } catch {
            return .failed(reason: "undecodable shard task: \(error)", retryable: false)
        }
        guard task.kind == kind else {
            return .failed(reason: "assignment kind \(kind) does not match its task's kind \(task.kind)", retryable: false)
        }
        return run(task)
    }

    public func run(_ task: ShardTask) -> Outcome {
        let start = Date()
        let control = ShardControl(threads: threads)
        let key = ObjectIdentifier(control)
        lock.lock(); running[key] = control; lock.unlock()
        defer { lock.lock(); running[key] = nil; lock.unlock() }
        do {
            let executor = try self.executor(task.kind)
            let report = try executor.execute(task, control: control)
            return .done(report, elapsed: Date().timeIntervalSince(start))
        } catch JobError.cancelled where control.shouldStop {
            return .abandoned(reason: JobError.cancelled.description)
        } catch let e as JobError {
            switch e {
            case .badSpec, .unknownKind, .badInput: return .failed(reason: e.description, retryable: false)
            default: return .failed(reason: e.description, retryable: true)
            }
        } catch {
            return .failed(reason: "\(error)", retryable: true)
        }
    }

    /// SIGTERM: running shards stop at their next item boundary and report as abandoned.
    public func abandonRunning() {
        lock.lock(); running.values.forEach { $0.requestStop() }; lock.unlock()
    }

    private func executor(_ kind: String) throws -> ShardExecutor {
        lock.lock(); defer { lock.unlock() }
        if let e = executors[kind] { return e }
        let e = try JobKinds.named(kind).makeExecutor()
        executors[kind] = e
        return e
    }
}
