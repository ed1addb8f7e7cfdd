import TestSupport
import XCTest
@testable import Datasets

final class IDXTests: XCTestCase {
    // Five 3x4 images: non-square, so rows and columns cannot be swapped unnoticed.
    let (count, rows, columns) = (5, 3, 4)
    lazy var pixels = fixturePixels(count: count * rows * columns)
    let labels: [UInt8] = [3, 1, 4, 1, 5]

    func testRawAndGzipFilesLoadIdentically() throws {
        let directory = makeTemporaryDirectory(self)
        let images = idxBytes(dimensions: [count, rows, columns], data: pixels)
        let labelFile = idxBytes(dimensions: [count], data: labels)
        writeRaw(images, to: "\(directory)/images.idx")
        writeRaw(labelFile, to: "\(directory)/labels.idx")
        writeGzip(images, to: "\(directory)/images.idx.gz")
        writeGzip(labelFile, to: "\(directory)/labels.idx.gz")

        let raw = try ImageShard(imagesPath: "\(directory)/images.idx", labelsPath: "\(directory)/labels.idx", rank: 0, ranks: 1)
        let packed = try ImageShard(imagesPath: "\(directory)/images.idx.gz", labelsPath: "\(directory)/labels.idx.gz",
                                    rank: 0, ranks: 1)
        for shard in [raw, packed] {
            XCTAssertEqual(shard.count, count)
            XCTAssertEqual(shard.totalCount, count)
            XCTAssertEqual(shard.rows, rows)
            XCTAssertEqual(shard.columns, columns)
            XCTAssertEqual(shard.pixelsPerImage, rows * columns)
            XCTAssertEqual(shard.pixels, pixels, "the shard holds the file's bytes")
            XCTAssertEqual(shard.labels, labels)
        }

        let (header, bytes) = try IDX.read(path: "\(directory)/images.idx.gz", kind: .images)
        XCTAssertEqual(header.dimensions, [count, rows, columns])
        XCTAssertEqual(header.byteCount, 16)
        XCTAssertEqual(bytes, pixels)
    }

    func testWriterProducesStandardIDX() throws {
        let directory = makeTemporaryDirectory(self)
        try pixels.withUnsafeBufferPointer {
            try IDX.writeImages(path: "\(directory)/out.idx", count: count, rows: rows, columns: columns, pixels: $0)
        }
        XCTAssertEqual(fileBytes("\(directory)/out.idx"), idxBytes(dimensions: [count, rows, columns], data: pixels))
        try IDX.writeLabels(path: "\(directory)/labels.idx", labels: labels)
        XCTAssertEqual(fileBytes("\(directory)/labels.idx"), idxBytes(dimensions: [count], data: labels))

        // Generator output in [-1, 1], clamped at both ends.
        let signed: [Float] = [-1, 1, 0, -3, 3, .nan]
        try signed.withUnsafeBufferPointer {
            try IDX.writeImages(path: "\(directory)/samples.idx", count: 1, rows: 2, columns: 3, signedPixels: $0)
        }
        XCTAssertEqual(try IDX.read(path: "\(directory)/samples.idx", kind: .images).bytes, [0, 255, 128, 0, 255, 0])
        XCTAssertEqual(directoryEntries(directory), ["labels.idx", "out.idx", "samples.idx"])

        assertThrows("cannot write IDX file \(directory)/bad.idx: dimensions [2, 3, 4] need 24 bytes but 60 were given; "
                     + "nothing was written (this is a bug in the caller)") {
            try pixels.withUnsafeBufferPointer {
                try IDX.writeImages(path: "\(directory)/bad.idx", count: 2, rows: 3, columns: 4, pixels: $0)
            }
        }
    }

    /// Loads the shard of `rank` from files with the given contents, gzip-compressing each
    /// when `gzip` is set.
    func load(images: [UInt8], labels: [UInt8], gzip: Bool = false, rank: Int = 0, ranks: Int = 1,
              in directory: String) throws {
        let suffix = gzip ? ".gz" : ""
        for (bytes, name) in [(images, "images"), (labels, "labels")] {
            if gzip { writeGzip(bytes, to: "\(directory)/\(name)\(suffix)") } else { writeRaw(bytes, to: "\(directory)/\(name)") }
        }
        _ = try ImageShard(imagesPath: "\(directory)/images\(suffix)", labelsPath: "\(directory)/labels\(suffix)",
                           rank: rank, ranks: ranks)
    }

    func testEachBadInputHasItsOwnMessage() throws {
        let directory = makeTemporaryDirectory(self)
        let images = idxBytes(dimensions: [count, rows, columns], data: pixels)
        let labelFile = idxBytes(dimensions: [count], data: labels)
        let imagesPath = "\(directory)/images"
        let labelsPath = "\(directory)/labels"

        assertThrows("cannot open \(directory)/absent: no such file (check the path; relative paths start at the current directory)") {
            _ = try ImageShard(imagesPath: "\(directory)/absent", labelsPath: labelsPath, rank: 0, ranks: 1)
        }
        assertThrows("\(imagesPath) is not an IDX file (magic 0x504B0304); expected 0x00000803 (unsigned-byte images "
                     + "in 3 dimensions); check that the path names an MNIST-format images file") {
            try load(images: [0x50, 0x4B, 0x03, 0x04] + images, labels: labelFile, in: directory)
        }
        assertThrows("\(labelsPath) is not an IDX file (magic 0x3C68746D); expected 0x00000801 (unsigned-byte labels "
                     + "in 1 dimension); check that the path names an MNIST-format labels file") {
            try load(images: images, labels: Array("<html>404</html>".utf8), in: directory)
        }
        assertThrows("\(imagesPath) holds IDX elements of type 0x0D (float32) but only unsigned bytes (0x08) are "
                     + "supported; convert the data to uint8 as in MNIST") {
            try load(images: idxBytes(type: 0x0D, dimensions: [count, rows, columns], data: pixels), labels: labelFile,
                     in: directory)
        }
        assertThrows("\(imagesPath) has 1 dimension but an IDX images file has 3 [count, rows, columns]; "
                     + "check that the images and labels files are not swapped") {
            try load(images: labelFile, labels: images, in: directory)
        }
        assertThrows("\(imagesPath) is truncated: it ends after 10 bytes, inside the IDX header; "
                     + "download or copy it again (launch/fetch-mnist)") {
            try load(images: Array(images[0..<10]), labels: labelFile, in: directory)
        }
        assertThrows("\(imagesPath) is truncated: it ends after 0 bytes, inside the IDX header; "
                     + "download or copy it again (launch/fetch-mnist)") {
            try load(images: [], labels: labelFile, in: directory)
        }
        // A cut data section is caught by every rank, also those whose own part is complete,
        // and in compressed files too.
        for gzip in [false, true] {
            for rank in 0..<2 {
                assertThrows("\(imagesPath)\(gzip ? ".gz" : "") is truncated: header declares 5 images of 3x4 (60 bytes) "
                             + "but only 50 bytes follow; download or copy it again (launch/fetch-mnist)") {
                    try load(images: Array(images.dropLast(10)), labels: labelFile, gzip: gzip, rank: rank, ranks: 2,
                             in: directory)
                }
            }
        }
        assertThrows("\(labelsPath) is truncated: header declares 5 labels (5 bytes) but only 4 bytes follow; "
                     + "download or copy it again (launch/fetch-mnist)") {
            try load(images: images, labels: Array(labelFile.dropLast()), in: directory)
        }
        assertThrows("\(imagesPath) holds 5 images but \(labelsPath) holds 4 labels; the two files must come from "
                     + "the same split (train-* with train-*, t10k-* with t10k-*)") {
            try load(images: images, labels: idxBytes(dimensions: [4], data: [1, 2, 3, 4]), in: directory)
        }
        assertThrows("\(imagesPath) holds no examples: header declares 0 images of 3x4; use a data set with at least one image") {
            try load(images: idxBytes(dimensions: [0, rows, columns], data: []), labels: idxBytes(dimensions: [0], data: []),
                     in: directory)
        }
        assertThrows("\(imagesPath) holds no examples: header declares 5 images of 0x4; use a data set with at least one image") {
            try load(images: idxBytes(dimensions: [count, 0, columns], data: []), labels: labelFile, in: directory)
        }
        assertThrows("\(imagesPath) declares dimensions 4294967295x4294967295x4294967295, too large to be real; "
                     + "the header is corrupt, download or copy the file again") {
            try load(images: idxBytes(dimensions: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: pixels), labels: labelFile,
                     in: directory)
        }
        // 2^48 bytes: no overflow, yet past any real data set.
        assertThrows("\(imagesPath) declares dimensions 65536x65536x65536, too large to be real; "
                     + "the header is corrupt, download or copy the file again") {
            try load(images: idxBytes(dimensions: [1 << 16, 1 << 16, 1 << 16], data: pixels), labels: labelFile,
                     in: directory)
        }
        // Data past what the header declares: refused on every rank, raw or compressed.
        for gzip in [false, true] {
            for rank in 0..<2 {
                assertThrows("\(imagesPath)\(gzip ? ".gz" : "") has 3 bytes after the data its header declares (5 images of 3x4): "
                             + "the header or the file is corrupt; download or copy it again (launch/fetch-mnist)") {
                    try load(images: images + [1, 2, 3], labels: labelFile, gzip: gzip, rank: rank, ranks: 2, in: directory)
                }
            }
        }
        assertThrows("\(labelsPath) has 1 byte after the data its header declares (5 labels): "
                     + "the header or the file is corrupt; download or copy it again (launch/fetch-mnist)") {
            _ = try IDX.read(path: { writeRaw(labelFile + [9], to: labelsPath); return labelsPath }(), kind: .labels)
        }
        // A header declaring two billion labels in a 20-byte file: truncated, found without
        // allocating the 2 GB it declares (libFuzzer's first find: memory grows with what is read).
        assertThrows("\(labelsPath) is truncated: header declares 2147543648 labels (2147543648 bytes) but only 12 bytes follow; "
                     + "download or copy it again (launch/fetch-mnist)") {
            writeRaw([0, 0, 8, 1, 0x80, 0, 0xEA, 0x60] + [UInt8](repeating: 1, count: 12), to: labelsPath)
            _ = try IDX.read(path: labelsPath, kind: .labels)
        }
        // Unreadable: a folder where the file should be.
        try FileManager.default.createDirectory(atPath: "\(directory)/folder", withIntermediateDirectories: true)
        assertThrows("cannot open \(directory)/folder: it is a directory (give the path of a file inside it)") {
            _ = try ImageShard(imagesPath: "\(directory)/folder", labelsPath: labelsPath, rank: 0, ranks: 1)
        }
        // Tests may run as root, whom chmod 000 does not stop: a file whose read(2) fails for
        // root too (/proc/self/mem at offset 0, never mapped: EIO), and chmod 000 for others.
        #if os(Linux)
        assertThrows("cannot read /proc/self/mem: Input/output error (check the disk and that the file was not "
                     + "replaced while being read)") {
            _ = try ImageShard(imagesPath: "/proc/self/mem", labelsPath: labelsPath, rank: 0, ranks: 1)
        }
        #endif
        if geteuid() != 0 {
            let locked = "\(directory)/locked"
            writeRaw(images, to: locked)
            XCTAssertEqual(chmod(locked, 0), 0)
            assertThrows("cannot open \(locked): permission denied (make the file readable, e.g. chmod u+r \(locked))") {
                _ = try ImageShard(imagesPath: locked, labelsPath: labelsPath, rank: 0, ranks: 1)
            }
        }
        assertThrows("cannot take the shard of rank 2 of 2 ranks; the rank must be in 0..<2") {
            try load(images: images, labels: labelFile, rank: 2, ranks: 2, in: directory)
        }
    }
}
