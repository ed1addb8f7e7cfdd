// Helpers shared by the test targets that read and write files.
import CZlib
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh directory under the system temp directory, removed by the test's teardown.
public func makeTemporaryDirectory(_ test: XCTestCase, prefix: String = "gantry-test") -> String {
    let base = NSTemporaryDirectory().hasSuffix("/") ? String(NSTemporaryDirectory().dropLast()) : NSTemporaryDirectory()
    var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(created != nil, "mkdtemp failed: \(errno)")
    let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

public func writeRaw(_ bytes: [UInt8], to path: String) {
    precondition(FileManager.default.createFile(atPath: path, contents: Foundation.Data(bytes)), "cannot write \(path)")
}

public func writeGzip(_ bytes: [UInt8], to path: String) {
    let file = gzopen(path, "wb")!
    bytes.withUnsafeBytes { precondition(gzwrite(file, $0.baseAddress, UInt32($0.count)) == Int32($0.count)) }
    precondition(gzclose(file) == Z_OK)
}

public func fileBytes(_ path: String) -> [UInt8] {
    [UInt8](FileManager.default.contents(atPath: path)!)
}

public func directoryEntries(_ path: String) -> [String] {
    (try? FileManager.default.contentsOfDirectory(atPath: path))?.sorted() ?? []
}

/// The error `body` throws, or a failure when it throws none.
public func thrownError(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) -> Error? {
    do {
        try body()
        XCTFail("expected an error", file: file, line: line)
        return nil
    } catch {
        return error
    }
}

/// Asserts that `body` throws an error whose one-line description is exactly `message`.
public func assertThrows(_ message: String, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
    guard let error = thrownError(file: file, line: line, body) else { return }
    XCTAssertEqual(String(describing: error), message, file: file, line: line)
    XCTAssertFalse(String(describing: error).contains("\n"), "error spans several lines", file: file, line: line)
}
