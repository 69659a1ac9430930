import Foundation

/// Ties a worker process to the coordinator that started it (the embedded `run`): when the
/// parent dies, even by SIGKILL, the kernel sends this process `signal` (Linux
/// `prctl(PR_SET_PDEATHSIG)`), so no worker is left reconnecting to a dead port.
public enum ParentProcess {
    /// Asks for `signal` when the parent dies, then checks that the parent is still `pid`
    /// (it may have died before the request). Returns false when it is already gone, or
    /// where the request is not available (not Linux); callers then rely on a bounded wait
    /// (`WorkerEndpoint.giveUpAfter`).
    public static func signalOnDeath(of pid: Int32, signal: Int32 = SIGTERM) -> Bool {
        #if os(Linux)
        // prctl is variadic in C, so Swift does not import it; glibc's is a plain system call
        // wrapper that reads its integer arguments as a non-variadic function would.
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(nil, "prctl") else { return false }   // nil: RTLD_DEFAULT on glibc
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        let PR_SET_PDEATHSIG: Int32 = 1
        guard prctl(PR_SET_PDEATHSIG, UInt(signal), 0, 0, 0) == 0 else { return false }
        return getppid() == pid
        #else
        return getppid() == pid
        #endif
    }
}
