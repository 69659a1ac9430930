import Foundation
import Logging
import XCTest
@testable import PipelineMessaging
@testable import PipelineTensor

final class MessagingWireTests: XCTestCase {
    func testEveryMessageRoundTrips() throws {
        let a = MessagingFixtures.assignment()
        let all: [WireMessage] = [
            .ready(MessagingFixtures.hello()),
            .request(credits: 4),
            .assign(a),
            .heartbeat,
            .result(MessagingFixtures.result(for: a)),
            .failed(ShardFailure(jobId: 3, shardId: 7, attempt: 2, reason: "disk full: out/7.png", retryable: true)),
            .disconnect,
            .ack(Acknowledgement(jobId: 3, shardId: 7, attempt: 2, verdict: .duplicate)),
            .failed(.stopping(a, reason: "abandoned: worker stopping")),
            .control(ControlRequest(requestId: "r1", operation: .submit, kind: "synthetic", spec: #"{"items":4}"#,
                                    maxAttempts: 2, leaseSeconds: 30, fresh: true)),
            .control(ControlRequest(requestId: "r2", operation: .status, jobId: 3, maxItemErrors: 5)),
            .controlReply(ControlReply(requestId: "r1", output: "1", notice: "same job already in the ledger: 1", jobId: 1,
                                       resumed: true)),
            .controlReply(ControlReply(requestId: "r2", error: "no job 3 in the ledger")),
        ]
        XCTAssertEqual(Set(all.map(\.command)), Set(WireCommand.allCases))
        for m in all {
            let frames = try WireCodec.encode(m)
            XCTAssertEqual(frames.count, 4)
            XCTAssertEqual(frames[0], [], "empty delimiter")
            XCTAssertEqual(frames[1], Array("DITP/1".utf8))
            XCTAssertEqual(frames[2], [m.command.rawValue])
            XCTAssertEqual(try WireCodec.decode(frames), m, "\(m.command)")
        }
    }

    /// Revision 2 (ACK) keeps the frames of DITP/1: a revision-1 READY (no `revision` key)
    /// still decodes, as a worker that expects no ACKs; a bad ACK body is a named error.
    func testRevisionTwoAddsAckAndStaysReadableForRevisionOne() throws {
        XCTAssertEqual(WireCodec.version, "DITP/1")
        XCTAssertTrue(MessagingFixtures.hello().expectsAcknowledgements)
        let v = Array("DITP/1".utf8)
        let old = Array(#"{"workerId":"w","hostname":"h","pid":1,"threads":2,"capabilities":[],"cachedModels":[]}"#.utf8)
        guard case .ready(let h) = try WireCodec.decode([[], v, [1], old]) else { return XCTFail("not READY") }
        XCTAssertNil(h.revision)
        XCTAssertFalse(h.expectsAcknowledgements)
        XCTAssertEqual(WireCommand.ack.rawValue, 0x08)
        XCTAssertTrue(WireCommand.ack.sentByCoordinator)
        XCTAssertFalse(WireCommand.ack.sentByWorker)
        for body in [#"{"jobId":1,"shardId":2,"attempt":3,"verdict":"maybe"}"#, #"{"jobId":1,"shardId":2}"#, "[]", ""] {
            XCTAssertThrowsError(try WireCodec.decode([[], v, [8], Array(body.utf8)]), body) { e in
                guard case .badBody(command: "ACK", _)? = e as? MessagingError else { return XCTFail("\(e)") }
            }
        }
    }

    func testNonFiniteMetricsSurviveJSON() throws {
        let r = ShardResult(jobId: 1, shardId: 2, attempt: 1, outputs: [], metrics: ["a": .infinity, "b": -.infinity, "c": .nan])
        guard case .result(let back) = try WireCodec.decode(WireCodec.encode(.result(r))) else { return XCTFail("not a result") }
        XCTAssertEqual(back.metrics["a"], .infinity)
        XCTAssertEqual(back.metrics["b"], -.infinity)
        XCTAssertTrue(back.metrics["c"]!.isNaN)
    }

    func testGarbageFramesThrowNamedErrors() throws {
        let v = Array("DITP/1".utf8)
        func expect(_ frames: [[UInt8]], max: Int = WireCodec.defaultMaxMessageBytes, _ check: (MessagingError) -> Bool,
                    line: UInt = #line) {
            do {
                let m = try WireCodec.decode(frames, maxBytes: max)
                XCTFail("decoded \(m)", line: line)
            } catch let e as MessagingError {
                XCTAssertTrue(check(e), "unexpected \(e)", line: line)
            } catch { XCTFail("\(error)", line: line) }
        }
        expect([[], Array("DITP/2".utf8), [4], []]) { if case .wrongVersion("DITP/2") = $0 { return true }; return false }
        expect([[], Array("MDPW01".utf8), [4], []]) { if case .wrongVersion = $0 { return true }; return false }
        expect([[], v, [0x7f], []]) { $0 == .unknownCommand(0x7f) }
        expect([[], v, [0], []]) { $0 == .unknownCommand(0) }
        expect([[], v, [1, 2], []]) { if case .malformedFrames = $0 { return true }; return false }
        expect([[], v, [1]]) { if case .malformedFrames = $0 { return true }; return false }
        expect([[1], v, [4], []]) { if case .malformedFrames = $0 { return true }; return false }
        expect([[], v, [4], [], []]) { if case .malformedFrames = $0 { return true }; return false }
        expect([]) { if case .malformedFrames = $0 { return true }; return false }
        let full = try WireCodec.encode(.ready(MessagingFixtures.hello()))[3]
        expect([[], v, [1], Array(full.prefix(full.count / 2))]) {
            if case .badBody(command: "READY", _) = $0 { return true }; return false
        }
        expect([[], v, [1], Array(#"{"workerId":"w"}"#.utf8)]) {
            if case .badBody(command: "READY", let reason) = $0 { return reason.contains("missing key") }; return false
        }
        expect([[], v, [5], Array("[1,2]".utf8)]) { if case .badBody(command: "RESULT", _) = $0 { return true }; return false }
        expect([[], v, [2], Array(#"{"credits":0}"#.utf8)]) { if case .badBody(command: "REQUEST", _) = $0 { return true }; return false }
        expect([[], v, [2], Array(#"{"credits":-5}"#.utf8)]) { if case .badBody(command: "REQUEST", _) = $0 { return true }; return false }
        expect([[], v, [4], [0x7b]]) { if case .badBody(command: "HEARTBEAT", _) = $0 { return true }; return false }
        expect([[], v, [3], [UInt8](repeating: 0x20, count: 2000)], max: 1000) { $0 == .oversized(bytes: 2000, limit: 1000) }
        expect([[], v, [3], [0xff, 0xfe, 0x00]]) { if case .badBody(command: "ASSIGN", _) = $0 { return true }; return false }
        XCTAssertThrowsError(try WireCodec.encode(.assign(Assignment(jobId: 1, shardId: 1, attempt: 1, kind: "x",
                                                                      payload: Data(count: 4000))), maxBytes: 1000))
    }

    func testCurvePolicyForEndpoints() {
        XCTAssertFalse(Curve.requiredFor(endpoint: "tcp://127.0.0.1:5555"))
        XCTAssertFalse(Curve.requiredFor(endpoint: "tcp://127.3.2.1:0"))
        XCTAssertFalse(Curve.requiredFor(endpoint: "tcp://localhost:5555"))
        XCTAssertFalse(Curve.requiredFor(endpoint: "tcp://[::1]:5555"))
        XCTAssertFalse(Curve.requiredFor(endpoint: "ipc:///tmp/dit.sock"))
        XCTAssertFalse(Curve.requiredFor(endpoint: "inproc://x"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://*:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://0.0.0.0:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://10.1.2.3:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://gpu-node-7:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://[::]:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://127.0.0.1.evil.example:5555"))
        XCTAssertTrue(Curve.requiredFor(endpoint: "tcp://127.0.0.1;10.0.0.5:5555"))
        XCTAssertThrowsError(try CoordinatorEndpoint(bind: "tcp://*:0", curve: nil, logger: .silent)) { e in
            XCTAssertEqual(e as? MessagingError, .curveRequired(endpoint: "tcp://*:0"))
        }
        XCTAssertThrowsError(try WorkerEndpoint(connect: "tcp://10.0.0.1:5555", hello: MessagingFixtures.hello(),
                                                curve: nil, logger: .silent)) { e in
            XCTAssertEqual(e as? MessagingError, .curveRequired(endpoint: "tcp://10.0.0.1:5555"))
        }
    }

    /// Random frames and random corruptions of valid messages: decoding either yields a
    /// message or throws a MessagingError, never traps.
    func testDecoderSurvivesRandomAndMutatedFrames() throws {
        var rng = SplitMix64(seed: 0xD17)
        let a = MessagingFixtures.assignment()
        let valid = try [WireMessage.ready(MessagingFixtures.hello()), .request(credits: 3), .assign(a), .heartbeat,
                         .result(MessagingFixtures.result(for: a)), .disconnect].map { try WireCodec.encode($0) }
        var decoded = 0
        for i in 0..<3000 {
            var frames: [[UInt8]]
            if i % 2 == 0 {
                frames = (0..<Int(rng.next() % 6)).map { _ in (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
                if frames.count == 4 && i % 4 == 0 { frames[0] = []; frames[1] = Array("DITP/1".utf8); frames[2] = [UInt8(rng.next() % 9)] }
            } else {
                frames = valid[Int(rng.next() % UInt64(valid.count))]
                let f = 1 + Int(rng.next() % 3)
                if !frames[f].isEmpty || f == 3 {
                    switch rng.next() % 3 {
                    case 0 where !frames[f].isEmpty: frames[f][Int(rng.next() % UInt64(frames[f].count))] ^= UInt8(1 + rng.next() % 255)
                    case 1: frames[f] = Array(frames[f].prefix(Int(rng.next() % UInt64(frames[f].count + 1))))
                    default: frames[f].append(UInt8(truncatingIfNeeded: rng.next()))
                    }
                }
            }
            do {
                _ = try WireCodec.decode(frames)
                decoded += 1
            } catch is MessagingError {
            } catch {
                XCTFail("non-MessagingError \(error) for \(frames)")
            }
        }
        XCTAssertLessThan(decoded, 3000, "mutations must be caught")
    }
}
