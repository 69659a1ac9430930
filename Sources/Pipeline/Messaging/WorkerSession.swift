import CZMQ
import Foundation
import Logging

/// One connection of a `WorkerEndpoint`'s socket thread: READY (with what this process still
/// holds), re-sent reports, then the loop: receive, report, heartbeat, stop, liveness.
extension WorkerEndpoint {
    func session(_ socket: ZMQSocket, monitor: SocketMonitor, backoff: inout Double) throws -> SessionEnd {
        let window = Double(liveness) * heartbeatInterval
        // Until the TCP connection exists, silence proves nothing: libzmq keeps retrying the
        // connect with its own back-off (ZMQ_RECONNECT_IVL..IVL_MAX), and the liveness clock
        // starts at CONNECTED. A worker started before its coordinator joins when it comes up.
        var reportedHandshake = false
        var connected = false
        var reportedWaiting = false
        state.lock()
        var ready = hello
        if (hello.revision ?? 1) >= 3 {
            ready.connection = sessionsOpened
            // Everything this process still answers for: the coordinator releases the rest.
            let held = (inFlight + queued).map { LeaseRef(jobId: $0.jobId, shardId: $0.shardId, attempt: $0.attempt) }
                + reports.pendingKeys.map { LeaseRef(jobId: $0.jobId, shardId: $0.shardId, attempt: $0.attempt) }
            ready.holding = Array(Set(held)).sorted { ($0.jobId, $0.shardId, $0.attempt) < ($1.jobId, $1.shardId, $1.attempt) }
        }
        state.unlock()
        _ = try send(.ready(ready), on: socket)
        state.lock()
        // Reports the last connection did not see acknowledged go again (the coordinator may
        // have died before its ledger had them, or restarted). The REQUEST below asks for
        // every free credit, so nothing waiting here asks for more.
        let resending = reports.reopen()
        let free = stopMode == nil ? credits - inFlight.count - queued.count : 0
        state.unlock()
        if resending > 0 { logger.log(level: .info, "re-sending \(resending) unacknowledged report(s) on the new connection") }
        if free > 0 { _ = try send(.request(credits: free), on: socket) }
        var deadline = monotonicNow() + window
        var nextHeartbeat = monotonicNow() + heartbeatInterval
        while true {
            // 1. Everything the coordinator sent.
            while true {
                let frames: [[UInt8]]?
                do {
                    frames = try socket.receive(dontWait: true, maxFrames: WireCodec.frameCount + 1,
                                                maxBytes: maxMessageBytes + 1024)
                } catch let e as MessagingError {
                    if case .zmq = e { throw e }
                    logger.log(level: .warning, "dropped a message from the coordinator: \(e)")
                    continue
                }
                guard let frames else { break }
                let message: WireMessage
                do { message = try WireCodec.decode(frames, maxBytes: maxMessageBytes) } catch {
                    logger.log(level: .warning, "dropped a message from the coordinator: \(error)")
                    continue
                }
                guard message.command.sentByCoordinator else {
                    logger.log(level: .warning, "dropped \(message.command) from the coordinator: coordinators never send it")
                    continue
                }
                deadline = monotonicNow() + window
                lastHeard = monotonicNow()
                backoff = reconnectInitial
                connected = true   // whatever the monitor said: the coordinator is there
                switch message {
                case .assign(let a): accept(a)
                case .ack(let k): acknowledged(k)
                case .disconnect:
                    logger.log(level: .info, "the coordinator dismissed this worker (DISCONNECT)")
                    abandonAll(report: nil)
                    // Revision 2: confirm, so a coordinator on its way out knows this worker heard it.
                    _ = try? send(.disconnect, on: socket)
                    try? socket.setLinger(milliseconds: closeLinger)
                    return .finished
                default: break
                }
            }
            // 2. Finished work, each fresh report followed by a request for more; reports
            //    unacknowledged for `resendInterval` go again.
            state.lock()
            let sendTime = monotonicNow()
            var pending = reports.takeDue(now: sendTime, resendInterval: resendInterval)
            let stopping = stopMode != nil
            state.unlock()
            var sent: [WorkOutcome] = []
            while let report = pending.first {
                guard try send(report.outcome.message, on: socket) else { break }
                pending.removeFirst()
                sent.append(report.outcome)
                if report.asksForMore && !stopping { _ = try send(.request(credits: 1), on: socket) }
            }
            if !sent.isEmpty || !pending.isEmpty {
                state.lock()
                let dropped = reports.settle(unsent: pending, sent: sent, at: sendTime, limit: maxUnacknowledged)
                state.unlock()
                if dropped > 0 {
                    logger.log(level: .warning, "\(dropped) report(s) never acknowledged by the coordinator forgotten (is it older than DITP/1 revision 2?)")
                }
            }
            // 3. Heartbeat.
            var now = monotonicNow()
            if now >= nextHeartbeat {
                if connected { _ = try send(.heartbeat, on: socket) }
                nextHeartbeat = now + heartbeatInterval
            }
            // 4. Stop (a graceful one waits a while for the ACKs of what it sent).
            state.lock()
            let mode = stopMode
            let idle = inFlight.isEmpty && queued.isEmpty && !reports.hasUnsent && !awaitingAcks(connected: connected)
            state.unlock()
            if mode == .abandon || (mode == .graceful && idle) {
                abandonAll { outcome in _ = try? self.send(outcome.message, on: socket) }
                _ = try send(.disconnect, on: socket)
                try? socket.setLinger(milliseconds: closeLinger)
                logger.log(level: .info, "worker \(hello.workerId) stopped (\(mode == .abandon ? "abandoning running work" : "graceful"))")
                return .finished
            }
            // 5. Liveness.
            now = monotonicNow()
            if orphaned() {
                giveUp()
                return .finished
            }
            if now >= deadline {
                if connected { return .lost("no message from the coordinator for \(String(format: "%.1f", window)) s") }
                if !reportedWaiting {
                    reportedWaiting = true
                    logger.log(level: .warning, "the coordinator at \(endpoint) is not reachable yet; still trying")
                }
                deadline = now + window
            }
            let readable = try ZMQPoll.readable([.socket(socket), .fd(wake.readFD), .socket(monitor.pair)],
                                                timeout: max(0, min(nextHeartbeat, deadline) - now))
            if readable[1] { wake.drain() }
            if readable[2] {
                var dropped = false
                for e in monitor.drain() {
                    if e.isHandshakeFailure && !reportedHandshake {
                        reportedHandshake = true
                        logger.log(level: .error, e.isAuthFailure
                            ? "the coordinator at \(endpoint) refused this worker's CURVE key (\(e.summary)): add its .pub to the coordinator's workers/ allow-list"
                            : "handshake with \(endpoint) failed (\(e.summary)): check coordinator.pub and that both sides agree on CURVE")
                    }
                    if e.code == ZMQ_EVENT_DISCONNECTED { dropped = true }
                    if e.code == ZMQ_EVENT_CONNECTED && !connected {
                        connected = true
                        deadline = monotonicNow() + window
                        if reportedWaiting { logger.log(level: .info, "connected to the coordinator at \(endpoint)") }
                    }
                }
                // A failed handshake also disconnects; that case waits for the liveness window and
                // backs off, so a refused worker does not hammer the coordinator.
                if dropped && !reportedHandshake { return .lost("the connection to the coordinator dropped") }
            }
        }
    }
}
