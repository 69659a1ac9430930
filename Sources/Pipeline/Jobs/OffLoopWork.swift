import Foundation

/// Work the coordinator's loop hands to other threads so that heartbeats never wait for it:
/// hashing a RESULT's output files, a job's finalize step (merging statistics, writing the
/// ADM batch). The work itself touches no coordinator state and no ledger; its result comes
/// back to the loop (`takeFinished`), which applies it (ledger writes happen only there).
///
/// Each lane is one serial queue, so hashing never competes with itself for the disk and a
/// long finalize never delays the verification of other jobs' shards.
public final class OffLoopWork: @unchecked Sendable {
    public enum Lane: CaseIterable { case verify, finalize }

    private let lock = NSLock()
    // Guarded by `lock`. The continuations (`then`) stay here, keyed by ticket, and run only on
    // the loop (`takeFinished`); the lane threads hand back nothing but the (Sendable) values.
    private var waiting: [Int: (any Sendable) throws -> Void] = [:]
    private var results: [(ticket: Int, value: any Sendable)] = []
    private var nextTicket = 0
    private var running = 0
    private let queues: [Lane: DispatchQueue]
    /// Called on the worker thread when a result is ready (the service interrupts its loop's wait).
    public var onFinished: (@Sendable () -> Void)?

    public init() {
        queues = Dictionary(uniqueKeysWithValues: Lane.allCases.map {
            ($0, DispatchQueue(label: "coordinator.\($0)", qos: .utility))
        })
    }

    /// Runs `work` on `lane`'s thread; `then` runs with its result on the loop, at the next
    /// `takeFinished`.
    public func submit<T: Sendable>(_ lane: Lane, _ work: @escaping @Sendable () -> T, then: @escaping (T) throws -> Void) {
        lock.lock()
        running += 1
        let ticket = nextTicket
        nextTicket += 1
        waiting[ticket] = { try then($0 as! T) }
        lock.unlock()
        queues[lane]!.async { [self] in
            let value = work()
            lock.lock()
            running -= 1
            results.append((ticket, value))
            let notify = onFinished
            lock.unlock()
            notify?()
        }
    }

    /// The continuations of the work finished so far, oldest first (run them on the loop).
    public func takeFinished() -> [() throws -> Void] {
        lock.lock()
        defer { results.removeAll(); lock.unlock() }
        return results.compactMap { r in
            waiting.removeValue(forKey: r.ticket).map { then in { try then(r.value) } }
        }
    }

    /// Work submitted and not yet taken back.
    public var outstanding: Int {
        lock.lock()
        defer { lock.unlock() }
        return running + results.count
    }
}
