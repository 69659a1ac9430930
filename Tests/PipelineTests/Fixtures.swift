import Foundation
import XCTest
@testable import PipelineTensor

/// Locates `../shared/fixtures` relative to the package root (read in place,
/// never copied). `DIT_FIXTURES` overrides the location.
enum Fixtures {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["DIT_FIXTURES"] { return URL(fileURLWithPath: env) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// The path of a fixture file; fails the test (never skips) when it is absent.
    static func require(_ relative: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let p = path(relative)
        guard FileManager.default.fileExists(atPath: p) else {
            XCTFail("fixture \(p) is missing", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return p
    }

    /// A fresh temporary directory, removed by the caller's teardown if it wishes.
    static func tempDir(_ name: String = "dit-test") -> String {
        let p = NSTemporaryDirectory() + "\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}

/// A test case that works in a fresh temporary directory, removed after each test.
class TempDirTestCase: XCTestCase {
    /// The directory's name prefix.
    class var tempPrefix: String { "dit-test" }
    var dir = ""
    override func setUp() { super.setUp(); dir = Fixtures.tempDir(Self.tempPrefix) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir); super.tearDown() }

    /// Writes `bytes` to `name` in the directory and returns its path.
    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let p = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }
}

/// The fixture README's tolerance: max |a − b| relative to the reference's
/// largest magnitude, floored at 1.
func assertClose(_ actual: Tensor, _ expected: Tensor, tol: Float, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.shape, expected.shape, "\(what): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let scale = max(expected.maxAbs, 1)
    var worst: Float = 0
    for i in 0..<expected.count { worst = max(worst, abs(actual.data[i] - expected.data[i])) }
    XCTAssertLessThanOrEqual(worst / scale, tol, "\(what): max abs diff \(worst) (scale \(scale))", file: file, line: line)
}
