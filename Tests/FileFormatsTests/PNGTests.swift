import TestSupport
import CZlib
import XCTest
@testable import FileFormats

final class PNGTests: XCTestCase {
    /// A minimal PNG decoder for what `PNG` writes (8-bit grayscale, filter 0 rows): checks the
    /// signature, chunk order and every CRC, and returns the pixels.
    func decode(_ png: [UInt8], file: StaticString = #filePath, line: UInt = #line)
        -> (width: Int, height: Int, pixels: [UInt8])? {
        func bigEndian(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        guard png.count >= 8, Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else {
            XCTFail("bad signature", file: file, line: line)
            return nil
        }
        var chunks: [(type: String, data: [UInt8])] = []
        var at = 8
        while at + 12 <= png.count {
            let length = bigEndian(at)
            let typeAndData = Array(png[(at + 4)..<(at + 8 + length)])
            let crc = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
            XCTAssertEqual(UInt(bigEndian(at + 8 + length)), UInt(crc), "CRC of chunk at \(at)", file: file, line: line)
            chunks.append((String(decoding: typeAndData[0..<4], as: UTF8.self), Array(typeAndData[4...])))
            at += 12 + length
        }
        XCTAssertEqual(at, png.count, "trailing bytes", file: file, line: line)
        XCTAssertEqual(chunks.map(\.type), ["IHDR", "IDAT", "IEND"], file: file, line: line)
        guard chunks.count == 3, chunks[0].data.count == 13 else { return nil }
        let header = chunks[0].data
        let width = header[0..<4].reduce(0) { $0 << 8 | Int($1) }
        let height = header[4..<8].reduce(0) { $0 << 8 | Int($1) }
        XCTAssertEqual(Array(header[8...]), [8, 0, 0, 0, 0], "depth, colour type, methods", file: file, line: line)

        var raw = [UInt8](repeating: 0, count: height * (width + 1))
        var rawLength = UInt(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            chunks[1].data.withUnsafeBufferPointer { uncompress(out.baseAddress, &rawLength, $0.baseAddress, UInt($0.count)) }
        }
        XCTAssertEqual(status, Z_OK, file: file, line: line)
        XCTAssertEqual(Int(rawLength), raw.count, file: file, line: line)
        var pixels: [UInt8] = []
        for row in 0..<height {
            XCTAssertEqual(raw[row * (width + 1)], 0, "filter type of row \(row)", file: file, line: line)
            pixels += raw[(row * (width + 1) + 1)..<((row + 1) * (width + 1))]
        }
        return (width, height, pixels)
    }

    func testRoundTrip() throws {
        let directory = makeTemporaryDirectory(self)
        let (width, height) = (37, 11)
        let pixels = (0..<(width * height)).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / width) }
        try PNG.writeGrayscale(path: "\(directory)/image.png", width: width, height: height, pixels: pixels)
        let decoded = try XCTUnwrap(decode(fileBytes("\(directory)/image.png")))
        XCTAssertEqual(decoded.width, width)
        XCTAssertEqual(decoded.height, height)
        XCTAssertEqual(decoded.pixels, pixels)
        XCTAssertEqual(directoryEntries(directory), ["image.png"])
    }

    func testBadArgumentsThrow() {
        assertThrows("cannot write image out.png: 5 pixel values were given but the size needs 6 "
                     + "(pass exactly count x height x width values)") {
            try PNG.writeGrayscale(path: "out.png", width: 3, height: 2, pixels: [0, 0, 0, 0, 0])
        }
        assertThrows("cannot write image out.png: size 0x2 is invalid (width and height must be between 1 and 2147483647)") {
            try PNG.writeGrayscale(path: "out.png", width: 0, height: 2, pixels: [])
        }
        assertThrows("cannot write image grid <memory>: 0 images in 4 columns (need at least one image and one column)") {
            _ = try ImageGrid(images: [], count: 0, height: 2, width: 2, columns: 4)
        }
    }

    func testSignedUnitMapping() {
        XCTAssertEqual(byteFromSignedUnit(-1), 0)
        XCTAssertEqual(byteFromSignedUnit(1), 255)
        XCTAssertEqual(byteFromSignedUnit(0), 128)
        XCTAssertEqual(byteFromSignedUnit(-0.5), 64)
        XCTAssertEqual(byteFromSignedUnit(7), 255)
        XCTAssertEqual(byteFromSignedUnit(-7), 0)
        XCTAssertEqual(byteFromSignedUnit(.nan), 0)
        XCTAssertEqual(byteFromSignedUnit(.infinity), 255)
        // Every byte survives the trip through the [-1, 1] scaling the data sets use.
        for byte in 0...255 { XCTAssertEqual(byteFromSignedUnit(Float(byte) / 127.5 - 1), UInt8(byte)) }
    }

    func testGridLayout() throws {
        // Three 2x3 images in 2 columns: 2 grid rows, the fourth cell empty.
        let values: [Float] = [-1, 0, 1, 1, 0, -1,    // image 0
                               1, 1, 1, 1, 1, 1,      // image 1
                               -1, -1, -1, 1, 1, 1]   // image 2
        let grid = try ImageGrid(images: values, count: 3, height: 2, width: 3, columns: 2)
        XCTAssertEqual(grid.width, 2 * (3 + 2) + 2)
        XCTAssertEqual(grid.height, 2 * (2 + 2) + 2)
        func row(_ y: Int) -> [UInt8] { Array(grid.pixels[(y * grid.width)..<((y + 1) * grid.width)]) }
        XCTAssertEqual(row(0), Array(repeating: 0, count: 12))
        XCTAssertEqual(row(2), [0, 0, 0, 128, 255, 0, 0, 255, 255, 255, 0, 0])
        XCTAssertEqual(row(3), [0, 0, 255, 128, 0, 0, 0, 255, 255, 255, 0, 0])
        XCTAssertEqual(row(6), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(row(7), [0, 0, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(row(9), Array(repeating: 0, count: 12))

        // Fewer images than columns: the grid shrinks to the images.
        let narrow = try ImageGrid(images: Array(values[0..<6]), count: 1, height: 2, width: 3, columns: 8)
        XCTAssertEqual(narrow.width, 3 + 4)

        let directory = makeTemporaryDirectory(self)
        try values.withUnsafeBufferPointer {
            try PNG.writeGrid(path: "\(directory)/grid.png", images: $0, count: 3, height: 2, width: 3, columns: 2)
        }
        let decoded = try XCTUnwrap(decode(fileBytes("\(directory)/grid.png")))
        XCTAssertEqual(decoded.pixels, grid.pixels)
    }
}
