import Foundation
import Logging

/// The write end of the active `StopSignals` pipe, read by the signal handler.
/// Set before the handlers are installed, so the handler never initialises anything.
nonisolated(unsafe) private var stopSignalsPipe: Int32 = -1

/// Async-signal-safe: one write(2) of the signal number.
private func stopSignalHandler(_ sig: Int32) {
    let fd = stopSignalsPipe
    guard fd >= 0 else { return }
    var b = UInt8(truncatingIfNeeded: sig)
    _ = write(fd, &b, 1)
}

/// SIGTERM handling for a worker (Slurm and Kubernetes preemption): the first
/// signal stops the worker gracefully (the running shard finishes and is
/// reported); after `grace` seconds, or at a second signal, running shards are
/// abandoned and reported FAILED (retryable). Either way the worker sends
/// DISCONNECT and `WorkerEndpoint.run` returns.
///
/// The handler only writes to a pipe; a watcher thread does the rest (so it works
/// whichever thread the kernel picks). One instance is active at a time; keep it
/// alive while the worker runs. `cancel()` restores the previous signal actions.
public final class StopSignals: @unchecked Sendable {
    private let signals: [Int32]
    private var previous: [Int32: sigaction] = [:]
    private let lock = NSLock()
    private var received = 0
    private var readFD: Int32 = -1
    private var writeFD: Int32 = -1
    private let done = DispatchSemaphore(value: 0)
    private var watching = false

    /// - Parameters:
    ///   - grace: seconds a graceful stop may take before running work is abandoned
    ///     (keep it under the scheduler's kill timeout: Slurm KillWait, Kubernetes
    ///     terminationGracePeriodSeconds); nil waits for the shard however long it takes.
    public init(worker: WorkerEndpoint, signals: [Int32] = [SIGTERM, SIGINT], grace: Double? = 20,
                logger: Logger = Logger(label: "dit.messaging")) throws {
        self.signals = signals
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw MessagingError.invalidUse("pipe() failed: \(String(cString: strerror(errno)))")
        }
        readFD = fds[0]
        writeFD = fds[1]
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        stopSignalsPipe = writeFD
        for sig in signals {
            var action = sigaction()
            action.__sigaction_handler = .init(sa_handler: stopSignalHandler)
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            var old = sigaction()
            sigaction(sig, &action, &old)
            previous[sig] = old
        }
        watching = true
        let fd = readFD
        let t = Thread { [weak worker, self] in
            defer { self.done.signal() }
            var b: UInt8 = 0
            while true {
                let n = read(fd, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 || b == 0 { return }
                self.lock.lock()
                self.received += 1
                let count = self.received
                self.lock.unlock()
                guard let worker else { continue }
                let name = String(cString: strsignal(Int32(b)))
                if count == 1 {
                    logger.log(level: .info, "\(name): finishing the running shard, then leaving\(grace.map { " (abandoning it after \($0) s)" } ?? "")")
                    worker.stop(graceful: true)
                    if let grace {
                        DispatchQueue.global().asyncAfter(deadline: .now() + grace) { [weak worker] in
                            guard let worker else { return }
                            logger.log(level: .warning, "grace period of \(grace) s over: abandoning running work")
                            worker.stop(graceful: false)
                        }
                    }
                } else {
                    logger.log(level: .warning, "\(name) again: abandoning running work")
                    worker.stop(graceful: false)
                }
            }
        }
        t.name = "dit-stop-signals"
        t.start()
    }

    /// How many of the signals arrived.
    public var count: Int {
        lock.lock(); defer { lock.unlock() }
        return received
    }

    /// Restores the previous signal actions and ends the watcher thread.
    public func cancel() {
        guard watching else { return }
        watching = false
        for sig in signals {
            if var old = previous[sig] { sigaction(sig, &old, nil) }
        }
        if stopSignalsPipe == writeFD { stopSignalsPipe = -1 }
        var zero: UInt8 = 0
        _ = write(writeFD, &zero, 1)
        done.wait()
        close(writeFD)
        close(readFD)
    }

    deinit { cancel() }
}
