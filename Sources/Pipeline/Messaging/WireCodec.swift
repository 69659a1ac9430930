import Foundation

/// The DITP/1 frame layout, after zguide's Majordomo and Paranoid Pirate patterns.
///
/// A DEALER (worker) sends and receives `[empty]["DITP/1"][command byte][JSON body]`;
/// the ROUTER (coordinator) sees the same frames behind the peer identity:
/// `[identity][empty]["DITP/1"][command][body]`. HEARTBEAT and DISCONNECT carry an
/// empty body. Decoding never traps: anything else throws a `MessagingError`
/// that the endpoints log before dropping the message.
///
/// Revisions of DITP/1 add commands and optional JSON fields without changing the
/// frames, so the version frame stays "DITP/1"; READY carries the worker's revision:
/// - 1: READY REQUEST ASSIGN HEARTBEAT RESULT FAILED DISCONNECT.
/// - 2: ACK (0x08, coordinator -> worker) for every RESULT/FAILED once the ledger has it;
///   a revision-2 worker keeps each report until acknowledged and re-sends it after a
///   reconnect. The coordinator sends ACK only to revision-2 workers.
/// - 3: READY's optional `session` (a per-process random token), `connection` (the process's
///   connection number) and `holding` (the leases the worker holds). The coordinator binds a
///   worker id to its credential (CURVE key and/or session token; host and pid for older
///   workers): a READY claiming a connected worker's id with another credential is refused,
///   one from an older connection than the current is dropped as stale, and leases the
///   worker does not list are released at once (their ASSIGN went to a dead connection).
///   RESULT metrics must be finite: the coordinator drops non-finite ones (logged).
public enum WireCodec {
    public static let version = "DITP/1"
    /// The newest revision this build speaks (see above).
    public static let revision = 3
    static let versionBytes = Array(version.utf8)
    /// Default cap on one message (and, through ZMQ_MAXMSGSIZE, on one frame).
    public static let defaultMaxMessageBytes = 16 << 20
    /// Frames of one message after the identity: empty, version, command, body.
    static let frameCount = 4

    private static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        // Metrics may hold inf/NaN (e.g. an empty bucket's mean); JSON cannot.
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    private static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    private struct Credits: Codable { var credits: Int }

    /// The JSON body of a message (empty for HEARTBEAT and DISCONNECT).
    public static func body(of message: WireMessage) throws -> [UInt8] {
        let enc = encoder()
        do {
            switch message {
            case .ready(let h): return Array(try enc.encode(h))
            case .request(let n): return Array(try enc.encode(Credits(credits: n)))
            case .assign(let a): return Array(try enc.encode(a))
            case .result(let r): return Array(try enc.encode(r))
            case .failed(let f): return Array(try enc.encode(f))
            case .ack(let k): return Array(try enc.encode(k))
            case .heartbeat, .disconnect: return []
            }
        } catch {
            throw MessagingError.badBody(command: message.command.description, reason: "cannot encode: \(error)")
        }
    }

    /// The frames a DEALER sends (and receives): `[empty][version][command][body]`.
    public static func encode(_ message: WireMessage, maxBytes: Int = defaultMaxMessageBytes) throws -> [[UInt8]] {
        let b = try body(of: message)
        if b.count > maxBytes { throw MessagingError.oversized(bytes: b.count, limit: maxBytes) }
        return [[], versionBytes, [message.command.rawValue], b]
    }

    /// Decodes `[empty][version][command][body]` (the identity already removed).
    public static func decode(_ frames: [[UInt8]], maxBytes: Int = defaultMaxMessageBytes) throws -> WireMessage {
        guard frames.count == frameCount else {
            throw MessagingError.malformedFrames("\(frames.count) frames, expected \(frameCount) ([empty][version][command][body])")
        }
        guard frames[0].isEmpty else { throw MessagingError.malformedFrames("first frame is not the empty delimiter") }
        guard frames[1] == versionBytes else {
            let shown = String(decoding: frames[1].prefix(32), as: UTF8.self)
            throw MessagingError.wrongVersion(shown)
        }
        guard frames[2].count == 1 else { throw MessagingError.malformedFrames("command frame of \(frames[2].count) bytes, expected 1") }
        guard let command = WireCommand(rawValue: frames[2][0]) else { throw MessagingError.unknownCommand(frames[2][0]) }
        let body = frames[3]
        if body.count > maxBytes { throw MessagingError.oversized(bytes: body.count, limit: maxBytes) }
        let dec = decoder()
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do { return try dec.decode(T.self, from: Data(body)) } catch {
                throw MessagingError.badBody(command: command.description, reason: describe(error))
            }
        }
        switch command {
        case .ready: return .ready(try decode(WorkerHello.self))
        case .request:
            let c = try decode(Credits.self)
            guard c.credits > 0 && c.credits <= 1 << 20 else {
                throw MessagingError.badBody(command: "REQUEST", reason: "credits \(c.credits) out of range 1...\(1 << 20)")
            }
            return .request(credits: c.credits)
        case .assign: return .assign(try decode(Assignment.self))
        case .result: return .result(try decode(ShardResult.self))
        case .failed: return .failed(try decode(ShardFailure.self))
        case .ack: return .ack(try decode(Acknowledgement.self))
        case .heartbeat, .disconnect:
            guard body.isEmpty else {
                throw MessagingError.badBody(command: command.description, reason: "\(body.count)-byte body, expected none")
            }
            return command == .heartbeat ? .heartbeat : .disconnect
        }
    }

    /// A short, single-line description of a JSON decoding error.
    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return "corrupt JSON at \(path(c.codingPath)): \(c.debugDescription)"
        case DecodingError.keyNotFound(let k, let c): return "missing key \(path(c.codingPath + [k]))"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(path(c.codingPath)): \(c.debugDescription)"
        case DecodingError.valueNotFound(_, let c): return "null at \(path(c.codingPath))"
        default: return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
