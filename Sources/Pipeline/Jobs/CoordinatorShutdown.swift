import Foundation
import PipelineMessaging

extension CoordinatorService {
    /// What `dismissWorkers` achieved.
    public struct Dismissal: CustomStringConvertible {
        /// DISCONNECTs sent (a worker that came back on a new connection counts again).
        public var told = 0
        /// Workers (revision 2) that answered with their own DISCONNECT: they heard it.
        public var confirmed = 0
        /// Workers still unconfirmed, or lost and not back, when the grace ran out.
        public var unheard: [String] = []
        public var seconds = 0.0

        public var description: String {
            let base = "\(told) DISCONNECT(s) sent, \(confirmed) confirmed in \(String(format: "%.2f", seconds)) s"
            return unheard.isEmpty ? base : base + "; not heard from: \(unheard.sorted().joined(separator: ", "))"
        }
    }

    /// The way out (`serve --exit-when-done`, the end of an embedded `run`): tells every worker
    /// DISCONNECT and keeps serving until each has heard it, so none is left reconnecting to a
    /// coordinator that is gone.
    ///
    /// A DISCONNECT can miss its worker: one that lost its connection (a stalled coordinator
    /// loop, a cut and restored link) reconnects after its back-off on a new connection, and a
    /// DISCONNECT sent on the old one, or none at all if the coordinator had already
    /// forgotten it, never arrives; the worker then retries forever. So here:
    /// - every connected worker is told; a revision-2 worker answers with its own DISCONNECT,
    ///   which ends the wait for it (a revision-1 worker counts as told once sent);
    /// - a worker whose connection was lost within the last `dismissGrace` seconds is waited
    ///   for (it may be reconnecting); its READY is answered with DISCONNECT;
    /// - any other message from a connection that is not a known worker (a dismissed one that
    ///   missed it, a reconnected one) is answered with DISCONNECT by the endpoint;
    /// - a RESULT/FAILED still arriving is recorded and acknowledged as usual.
    /// Each wait ends after `dismissGrace` seconds (dead workers never answer); `shouldStop`
    /// (a signal) ends them all at once.
    @discardableResult
    public func dismissWorkers(shouldStop: () -> Bool = { false }) throws -> Dismissal {
        endpoint.dismissing = true
        let start = Self.now()
        var result = Dismissal()
        // worker id -> until when to wait for it
        var awaited: [String: Double] = [:]
        // Connections that will confirm a DISCONNECT (the endpoint answers a lost one that
        // speaks again, e.g. over a restored link) -> their worker id.
        var toldPeers: [PeerID: String] = [:]
        for (id, lost) in lostWorkers where lost.at + dismissGrace > start {
            awaited[id] = lost.at + dismissGrace
            toldPeers[lost.peer] = id
        }

        func dismiss(_ peer: PeerID) throws {
            let hello = endpoint.hello(of: peer)
            let id = hello?.workerId ?? core.workerId(of: peer)
            do {
                try endpoint.send(.disconnect, to: peer)
                result.told += 1
            } catch {
                logger.warning("DISCONNECT to peer \(peer) not sent: \(error)")
            }
            // Leases it may hold go back without using an attempt.
            _ = try core.handle(.dismissed(peer))
            guard let id else { return }
            if hello?.expectsAcknowledgements ?? false {
                toldPeers[peer] = id
                awaited[id] = Self.now() + dismissGrace
            } else {
                awaited[id] = nil
            }
        }

        for peer in endpoint.connectedPeers { try dismiss(peer) }
        let hardStop = start + 3 * dismissGrace
        while true {
            let now = Self.now()
            awaited = awaited.filter { $0.value > now }
            // A RESULT being verified off the loop is waited for too (its shard is recorded).
            let verifying = core.offLoop?.outstanding ?? 0
            if (awaited.isEmpty && verifying == 0) || now >= hardStop || shouldStop() { break }
            if verifying > 0 { applyFinishedWork() }
            for peer in endpoint.expiredPeers() {
                _ = try core.handle(.gone(peer, reason: "silent for \(endpoint.liveness) heartbeats"))
            }
            guard let (peer, message) = try endpoint.receive(timeout: 0.05) else { continue }
            switch message {
            case .disconnect:
                if let id = toldPeers.removeValue(forKey: peer) {
                    if awaited.removeValue(forKey: id) != nil { result.confirmed += 1 }
                } else {
                    // A worker leaving on its own before it was told.
                    if let id = core.workerId(of: peer) { awaited[id] = nil }
                    _ = try core.handle(.gone(peer, reason: "disconnected"))
                }
            case .ready:
                if let input = input(peer: peer, message: message) { _ = core.handleContained(input) }
                try dismiss(peer)
            case .result, .failed:
                // Recorded as usual (files hashed off the loop; the wait above includes that work).
                if let input = Self.input(peer: peer, message: message) {
                    apply(1, "report(s)") { core.handleContained(input) }
                }
                try dismiss(peer)
            case .request:
                try dismiss(peer)
            case .control(let request):
                answer(request, from: peer)
            case .assign, .heartbeat, .ack, .controlReply:
                break
            }
        }
        result.unheard = Array(awaited.keys)
        result.seconds = Self.now() - start
        return result
    }
}
