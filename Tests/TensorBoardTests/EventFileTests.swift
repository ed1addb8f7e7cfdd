import Foundation
import SwiftProtobuf
import TestSupport
import XCTest
@testable import TensorBoard

/// The event file's framing and messages, read back here record by record. (.ci/end-to-end reads
/// a training run's files with TensorBoard's own reader.)
final class EventFileTests: XCTestCase {
    func testCRC32CMatchesTheStandardCheckValues() {
        func crc(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { CRC32C.checksum($0) } }
        XCTAssertEqual(crc(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(crc([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)   // RFC 3720 B.4
        XCTAssertEqual(crc([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(crc(Array(0...31)), 0x46DD_794E)
    }

    func testMaskedCRCRotatesAndAddsTheConstant() {
        let bytes = Array("123456789".utf8)
        let c: UInt32 = 0xE306_9283
        XCTAssertEqual(bytes.withUnsafeBytes { CRC32C.masked($0) }, ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
    }

    func testTheFileStartsWithItsVersionAndHoldsScalarsImagesAndHistograms() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try SummaryWriter(directory: dir, wallTime: 1_700_000_000)
        XCTAssert(writer.path.hasPrefix(dir + "/events.out.tfevents.1700000000."))
        try writer.scalars([("loss/d", 1.25), ("loss/g", -0.5)], step: 7, wallTime: 1_700_000_001)
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]
        try writer.image(tag: "samples", png: png, width: 28, height: 14, step: 8)
        try writer.histograms([("G.0/kernel", [0, 1, 2, 3])], step: 9)

        let events = try readEvents(writer.path)
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events[0].wallTime, 1_700_000_000)
        XCTAssertEqual(events[1].step, 7)
        XCTAssertEqual(events[1].wallTime, 1_700_000_001)
        XCTAssertEqual(events[1].summary.value.map(\.tag), ["loss/d", "loss/g"])
        XCTAssertEqual(events[1].summary.value.map(\.simpleValue), [1.25, -0.5])
        let image = events[2].summary.value[0].image
        XCTAssertEqual([image.width, image.height, image.colorspace], [28, 14, 1])
        XCTAssertEqual([UInt8](image.encodedImageString), png)
        let histogram = events[3].summary.value[0].histo
        XCTAssertEqual(events[3].summary.value[0].tag, "G.0/kernel")
        XCTAssertEqual([histogram.min, histogram.max, histogram.num, histogram.sum, histogram.sumSquares], [0, 3, 4, 6, 14])
    }

    /// Equal buckets from min to max; bucket i holds (limit[i-1], limit[i]], the first also min.
    func testHistogramBucketsCountEveryFiniteValueOnce() {
        let h = SummaryWriter.histogram([0, 0.5, 1, 1.5, 2, 3, .nan, .infinity], buckets: 3)
        XCTAssertEqual(h.bucketLimit, [1, 2, 3])
        XCTAssertEqual(h.bucket, [3, 2, 1])
        XCTAssertEqual(h.num, 6)
        let flat = SummaryWriter.histogram([2, 2, 2], buckets: 30)
        XCTAssertEqual(flat.bucketLimit, [2])
        XCTAssertEqual(flat.bucket, [3])
        XCTAssertEqual(SummaryWriter.histogram([.nan], buckets: 30).num, 0)
    }

    /// A crash mid-write leaves a torn last record; every earlier one still reads, with its checksums.
    func testATornLastRecordLeavesTheEarlierOnesReadable() throws {
        let dir = makeTemporaryDirectory(self)
        let writer = try SummaryWriter(directory: dir)
        for step in 1...3 { try writer.scalars([("x", Float(step))], step: step) }
        let whole = fileBytes(writer.path)
        writeRaw(Array(whole.dropLast(5)), to: writer.path)
        let events = try readEvents(writer.path)
        XCTAssertEqual(events.map(\.step), [0, 1, 2])
    }

    func testAFileThatCannotBeCreatedIsNamedWithTheFix() {
        let error = thrownError { _ = try SummaryWriter(directory: "/nonexistent-gantry", wallTime: 5) }
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        XCTAssertEqual(error.map { String(describing: $0) },
                       "cannot write TensorBoard's event file /nonexistent-gantry/events.out.tfevents.5.\(host).\(getpid()).0 "
                           + "(No such file or directory): make --out writable, or pass --no-tensorboard")
    }

    /// Reads TFRecord records, checking both masked CRCs, and stops at a torn last record.
    private func readEvents(_ path: String) throws -> [TBEvent] {
        let bytes = fileBytes(path)
        var events: [TBEvent] = [], at = 0
        func u32(_ i: Int) -> UInt32 { bytes[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        while at + 12 <= bytes.count {
            let length = Int(bytes[at..<at + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            XCTAssertEqual(Array(bytes[at..<at + 8]).withUnsafeBytes { CRC32C.masked($0) }, u32(at + 8))
            guard at + 12 + length + 4 <= bytes.count else { break }
            let data = Array(bytes[at + 12..<at + 12 + length])
            XCTAssertEqual(data.withUnsafeBytes { CRC32C.masked($0) }, u32(at + 12 + length))
            events.append(try TBEvent(serializedBytes: data))
            at += 16 + length
        }
        return events
    }
}
