import TestSupport
import XCTest
@testable import FileFormats

final class CompressedFileReaderTests: XCTestCase {
    /// 300 KB of non-repeating bytes: larger than zlib's buffers and the skip scratch buffer.
    let content: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }

    func testGzipAndRawReadIdentically() throws {
        let directory = makeTemporaryDirectory(self)
        writeRaw(content, to: "\(directory)/plain")
        writeGzip(content, to: "\(directory)/packed.gz")
        XCTAssertNotEqual(fileBytes("\(directory)/packed.gz"), content, "fixture is not compressed")
        for path in ["\(directory)/plain", "\(directory)/packed.gz"] {
            XCTAssertEqual(try CompressedFileReader(path: path).readAll(), content, path)

            let reader = try CompressedFileReader(path: path)
            var head = [UInt8](repeating: 0, count: 10)
            try head.withUnsafeMutableBytes { try reader.read(into: $0) }
            XCTAssertEqual(head, Array(content[0..<10]))
            try reader.skip(bytes: 200_000)
            XCTAssertEqual(reader.offset, 200_010)
            var middle = [UInt8](repeating: 0, count: 5)
            try middle.withUnsafeMutableBytes { try reader.read(into: $0) }
            XCTAssertEqual(middle, Array(content[200_010..<200_015]))
            XCTAssertEqual(try reader.readAll(), Array(content[200_015...]))
            XCTAssertEqual(try reader.skipToEnd(), 0)
        }
    }

    func testShortReadReportsTruncation() throws {
        let directory = makeTemporaryDirectory(self)
        writeGzip(Array(content[0..<100]), to: "\(directory)/short.gz")
        let reader = try CompressedFileReader(path: "\(directory)/short.gz")
        try reader.skip(bytes: 60)
        var buffer = [UInt8](repeating: 0, count: 50)
        assertThrows("\(directory)/short.gz is truncated: 50 bytes were needed at byte 60 but only 40 remain "
                     + "(the file is incomplete; copy or download it again)") {
            try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
        }
        let skipper = try CompressedFileReader(path: "\(directory)/short.gz")
        XCTAssertEqual(thrownError { try skipper.skip(bytes: 101) } as? FileError,
                       .truncated(path: "\(directory)/short.gz", offset: 0, requested: 101, available: 100))
    }

    func testCutGzipStreamIsTruncationAndDamagedStreamIsCorruption() throws {
        let directory = makeTemporaryDirectory(self)
        writeGzip(content, to: "\(directory)/whole.gz")
        let packed = fileBytes("\(directory)/whole.gz")

        // Cut in the middle of the deflate data: zlib yields what it can, then reports the end.
        writeRaw(Array(packed[0..<(packed.count / 2)]), to: "\(directory)/cut.gz")
        let cut = try CompressedFileReader(path: "\(directory)/cut.gz")
        let got = try cut.skipToEnd()
        XCTAssertGreaterThan(got, 0)
        XCTAssertLessThan(got, content.count)

        // A flipped CRC in the gzip trailer is only noticed at the end of the stream.
        var damaged = packed
        damaged[damaged.count - 6] ^= 0xFF
        writeRaw(damaged, to: "\(directory)/damaged.gz")
        let reader = try CompressedFileReader(path: "\(directory)/damaged.gz")
        try reader.skip(bytes: 1000)
        let error = thrownError { _ = try reader.skipToEnd() } as? FileError
        guard case let .corrupt(path, offset, reason) = error else { return XCTFail("not corruption: \(String(describing: error))") }
        XCTAssertEqual(path, "\(directory)/damaged.gz")
        XCTAssertEqual(reason, "incorrect data check")
        XCTAssertLessThanOrEqual(offset, content.count)
        XCTAssertEqual(error?.description, "\(directory)/damaged.gz is corrupt: zlib reports \"incorrect data check\" "
                       + "near byte \(offset) of the decompressed data (the file is damaged; copy or download it again)")
    }

    func testMissingFileAndDirectory() {
        let directory = makeTemporaryDirectory(self)
        assertThrows("cannot open \(directory)/absent.gz: no such file "
                     + "(check the path; relative paths start at the current directory)") {
            _ = try CompressedFileReader(path: "\(directory)/absent.gz")
        }
        assertThrows("cannot open \(directory): it is a directory (give the path of a file inside it)") {
            _ = try CompressedFileReader(path: directory)
        }
    }
}
