import XCTest

/// Asserts that `expr` throws an error whose description mentions every one of
/// `parts` (the file, member, field…), and that passes `check` when one is given.
func assertErrorMentions(_ expr: @autoclosure () throws -> Any, _ parts: [String],
                         where check: ((Error) -> Bool)? = nil,
                         file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expr(), file: file, line: line) { e in
        if let check { XCTAssertTrue(check(e), "unexpected error type: \(e)", file: file, line: line) }
        for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(e)' lacks '\(p)'", file: file, line: line) }
    }
}
