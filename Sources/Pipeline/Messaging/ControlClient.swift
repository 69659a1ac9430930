import CZMQ
import Foundation

/// The client side of CONTROL (DITP/1 revision 4): one ledger command sent to a running
/// coordinator, one CONTROL_REPLY back. A DEALER like a worker's, with the same CURVE keys
/// (any key on the coordinator's allow-list) when the endpoint is not loopback.
public enum ControlClient {
    /// Sends `request` to the coordinator at `endpoint` and waits up to `timeout` seconds
    /// for its reply.
    public static func send(_ request: ControlRequest, to endpoint: String, curve: CurveClientKeys?,
                            timeout: Double = 60, insecure: Bool = false) throws -> ControlReply {
        if curve == nil && !insecure && Curve.requiredFor(endpoint: endpoint) {
            throw MessagingError.curveRequired(endpoint: endpoint)
        }
        let context = try ZMQContext()
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .dealer)
        defer { socket.close() }
        try socket.setLinger(milliseconds: 0)
        try socket.setMaxMessageSize(Int64(WireCodec.defaultMaxMessageBytes + 1024))
        if let curve {
            try socket.setCurveClient(publicKey: curve.publicKey, secretKey: curve.secretKey, serverPublicKey: curve.serverPublicKey)
        }
        if endpoint.contains("[") { try socket.setOption(ZMQ_IPV6, Int32(1), name: "ZMQ_IPV6") }
        try socket.connect(endpoint)
        // Queued until the connection (and its CURVE handshake) is up.
        try socket.send(try WireCodec.encode(.control(request)), dontWait: false)
        let deadline = monotonicNow() + timeout
        while true {
            let left = deadline - monotonicNow()
            guard left > 0 else {
                throw MessagingError.invalidUse("no reply from the coordinator at \(endpoint) within \(Int(timeout)) s"
                    + (curve == nil ? "" : " (is this key on its allow-list, and coordinator.pub its key?)"))
            }
            guard try ZMQPoll.readable([.socket(socket)], timeout: left)[0],
                  let frames = try socket.receive(dontWait: true, maxFrames: WireCodec.frameCount + 1,
                                                  maxBytes: WireCodec.defaultMaxMessageBytes + 1024) else { continue }
            guard case .controlReply(let reply) = try WireCodec.decode(frames), reply.requestId == request.requestId else {
                continue   // not ours (nothing else is sent to a control client)
            }
            return reply
        }
    }
}
