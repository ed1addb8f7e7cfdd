import CZlib
import TestSupport
import XCTest
@testable import FileFormats

/// The PNG reader: what Gantry writes, the filters other tools write, and each bad file's line.
final class PNGDecodingTests: XCTestCase {
    /// A 13x7 image with every kind of neighbourhood (edges, ramps, noise).
    let image = GrayscaleImage(width: 13, height: 7, pixels: (0 ..< 91).map { UInt8(truncatingIfNeeded: $0 * $0 * 7 + $0 / 13 * 31) })

    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeAndData = Array(type.utf8) + data
        let crc = UInt32(typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
        return bigEndian(UInt32(data.count)) + typeAndData + bigEndian(crc)
    }

    func bigEndian(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }

    func header(width: Int, height: Int, depth: UInt8 = 8, colour: UInt8 = 0, interlace: UInt8 = 0) -> [UInt8] {
        chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [depth, colour, 0, 0, interlace])
    }

    func deflate(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(compressBound(UInt(bytes.count))))
        var length = UInt(out.count)
        XCTAssertEqual(compress2(&out, &length, bytes, UInt(bytes.count), 9), Z_OK)
        return Array(out.prefix(Int(length)))
    }

    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// `image` with row y filtered by filter type `filters[y % count]` (PNG specification, 9.2).
    func filtered(_ filters: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0 ..< image.height {
            let filter = filters[y % filters.count]
            raw.append(filter)
            for x in 0 ..< image.width {
                let a = x > 0 ? Int(image[x - 1, y]) : 0, b = y > 0 ? Int(image[x, y - 1]) : 0
                let c = x > 0 && y > 0 ? Int(image[x - 1, y - 1]) : 0
                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                let predicted = filter > 4 ? 0 : [0, a, b, (a + b) / 2, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][Int(filter)]
                raw.append(UInt8(truncatingIfNeeded: Int(image[x, y]) - predicted))
            }
        }
        return raw
    }

    func testReadsWhatPNGWrites() throws {
        let path = makeTemporaryDirectory(self) + "/a.png"
        try PNG.writeGrayscale(path: path, image: image)
        XCTAssertEqual(try PNG.readGrayscale(path: path), image)
    }

    /// Rows of every filter type, the data split over three IDAT chunks, a text chunk between.
    func testEveryFilterTypeAndSplitImageData() throws {
        let data = deflate(filtered([0, 1, 2, 3, 4]))
        let thirds = [data[..<5], data[5 ..< 9], data[9...]].map(Array.init)
        let png = signature + header(width: 13, height: 7) + chunk("IDAT", thirds[0]) + chunk("tEXt", Array("a\0b".utf8))
            + chunk("IDAT", thirds[1]) + chunk("IDAT", thirds[2]) + chunk("IEND", [])
        XCTAssertEqual(try PNG.decodeGrayscale(png), image)
    }

    func testEachBadFileHasItsLine() throws {
        let good = signature + header(width: 13, height: 7) + chunk("IDAT", deflate(filtered([0]))) + chunk("IEND", [])
        XCTAssertEqual(try PNG.decodeGrayscale(good), image)
        let cases: [([UInt8], String)] = [
            (Array("GIF89a".utf8), "x.png is not a PNG file (it does not start with the PNG signature)"),
            (Array(good.prefix(60)), "x.png is damaged: chunk IDAT at byte 33 runs past the end of the file (write it again, or delete it)"),
            (Array(good.dropLast(12)), "x.png is damaged: it ends at byte \(good.count - 12) without an IEND chunk (write it again, or delete it)"),
            (good.enumerated().map { $0.offset == 50 ? $0.element ^ 1 : $0.element },
             "x.png is damaged: chunk IDAT at byte 33 fails its CRC-32 (write it again, or delete it)"),
            (signature + chunk("IDAT", []) + chunk("IEND", []), "x.png is damaged: its first chunk is IDAT, not IHDR (write it again, or delete it)"),
            (signature + header(width: 13, height: 7, colour: 2) + chunk("IEND", []),
             "cannot read x.png: bit depth 8, colour type 2 (Gantry reads 8-bit grayscale, non-interlaced PNGs, as it writes them)"),
            (signature + header(width: 13, height: 7, depth: 16) + chunk("IEND", []),
             "cannot read x.png: bit depth 16, colour type 0 (Gantry reads 8-bit grayscale, non-interlaced PNGs, as it writes them)"),
            (signature + header(width: 13, height: 7, interlace: 1) + chunk("IEND", []),
             "cannot read x.png: it is interlaced (Gantry reads 8-bit grayscale, non-interlaced PNGs, as it writes them)"),
            (signature + header(width: 0, height: 7) + chunk("IEND", []), "x.png is damaged: its size is 0x7 (write it again, or delete it)"),
            (signature + header(width: 1 << 20, height: 1 << 20) + chunk("IEND", []),
             "cannot read x.png: 1048576x1048576 is larger than 67108864 pixels (Gantry reads 8-bit grayscale, non-interlaced PNGs, as it writes them)"),
            (signature + header(width: 4000, height: 4000) + chunk("IDAT", deflate([0, 1])) + chunk("IEND", []),
             "x.png is damaged: 10 bytes of image data cannot hold 4000x4000 pixels (write it again, or delete it)"),
            (signature + header(width: 13, height: 7) + chunk("IDAT", deflate(Array(filtered([0]).dropLast()))) + chunk("IEND", []),
             "x.png is damaged: its image data inflates to 97 bytes, not 98 (7 rows of a filter byte and 13 pixels) "
                + "(write it again, or delete it)"),
            (signature + header(width: 13, height: 7) + chunk("IDAT", deflate(filtered([0]) + [0])) + chunk("IEND", []),
             "x.png is damaged: its image data is cut short, or inflates to more than 98 bytes (7 rows of a filter byte and "
                + "13 pixels) (write it again, or delete it)"),
            (signature + header(width: 13, height: 7) + chunk("IDAT", deflate(filtered([0, 0, 5]))) + chunk("IEND", []),
             "x.png is damaged: row 2 has filter type 5 (PNG defines 0 to 4) (write it again, or delete it)"),
            (signature + header(width: 13, height: 7) + chunk("IDAT", [1, 2, 3, 4]) + chunk("IEND", []),
             "x.png is damaged: its image data is not zlib data (write it again, or delete it)"),
            (signature + chunk("I\nDR", []) + chunk("IEND", []),
             "x.png is damaged: its first chunk is I\\nDR, not IHDR (write it again, or delete it)"),
        ]
        for (bytes, message) in cases {
            assertThrows(message) { _ = try PNG.decodeGrayscale(bytes, path: "x.png") }
        }
        assertThrows("cannot open /nonexistent/x.png: no such file (check the path; relative paths start at the current directory)") {
            _ = try PNG.readGrayscale(path: "/nonexistent/x.png")
        }
    }
}
