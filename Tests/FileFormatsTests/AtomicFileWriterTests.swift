import TestSupport
import XCTest
@testable import FileFormats

final class AtomicFileWriterTests: XCTestCase {
    func testNothingIsReplacedUntilCommit() throws {
        let directory = makeTemporaryDirectory(self)
        let path = "\(directory)/out.bin"
        try AtomicFileWriter.write([1, 2, 3], to: path)
        XCTAssertEqual(fileBytes(path), [1, 2, 3])

        do {
            let writer = try AtomicFileWriter(path: path)
            try writer.write([9, 9, 9, 9])
            XCTAssertEqual(directoryEntries(directory).count, 2, "temporary file sits next to the target")
            // Dropped without commit, as when the process fails mid-write.
        }
        XCTAssertEqual(fileBytes(path), [1, 2, 3], "an uncommitted write replaced the file")
        XCTAssertEqual(directoryEntries(directory), ["out.bin"], "the temporary file was not removed")

        let writer = try AtomicFileWriter(path: path)
        try writer.write([4, 5])
        try writer.commit()
        XCTAssertEqual(fileBytes(path), [4, 5])
        XCTAssertEqual(directoryEntries(directory), ["out.bin"])

        assertThrows("cannot write \(directory)/missing/out.bin: cannot create a temporary file in "
                     + "\(directory)/missing (No such file or directory); create the directory or choose a writable location") {
            try AtomicFileWriter.write([1], to: "\(directory)/missing/out.bin")
        }
    }
}
