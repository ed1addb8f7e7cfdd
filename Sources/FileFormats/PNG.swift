import CZlib

/// A wrong argument to the image encoders; these are caller bugs, reported instead of trapping.
public enum ImageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Width or height is not positive, or too large for PNG (31 bits).
    case invalidSize(path: String, width: Int, height: Int)
    /// The pixel buffer does not hold `width * height` (or `count * height * width`) values.
    case pixelCountMismatch(path: String, expected: Int, actual: Int)
    /// A grid was asked for no images or no columns.
    case invalidGrid(path: String, count: Int, columns: Int)
    /// zlib's compress2 failed (only possible when out of memory).
    case compressionFailed(path: String, code: Int32)

    public var description: String {
        switch self {
        case let .invalidSize(path, width, height):
            return "cannot write image \(path): size \(width)x\(height) is invalid "
                + "(width and height must be between 1 and 2147483647)"
        case let .pixelCountMismatch(path, expected, actual):
            return "cannot write image \(path): \(actual) pixel values were given but the size needs \(expected) "
                + "(pass exactly count x height x width values)"
        case let .invalidGrid(path, count, columns):
            return "cannot write image grid \(path): \(count) images in \(columns) columns "
                + "(need at least one image and one column)"
        case let .compressionFailed(path, code):
            return "cannot write image \(path): zlib compress2 failed with code \(code) (out of memory?)"
        }
    }
}

/// The PNG encoder: 8-bit grayscale, no interlacing, filter type 0 on every row.
///
/// Filter "None" keeps the encoder a few lines long; for the small sample grids Gantry writes,
/// adaptive filtering would save a few kilobytes at most. Chunk CRCs are zlib's `crc32`, which is
/// exactly the CRC-32 that PNG specifies.
public enum PNG {
    /// The encoded bytes of a `width x height` grayscale image; `pixels` is row-major, top row
    /// first, one byte per pixel (0 black, 255 white). `path` is used only in error messages.
    public static func encodeGrayscale(width: Int, height: Int, pixels: UnsafeBufferPointer<UInt8>,
                                       path: String = "<memory>") throws -> [UInt8] {
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageError.invalidSize(path: path, width: width, height: height)
        }
        let (expected, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels.count == expected else {
            throw ImageError.pixelCountMismatch(path: path, expected: overflow ? Int.max : expected,
                                                actual: pixels.count)
        }

        // Each scanline is prefixed with its filter type byte (0: None).
        var raw = [UInt8](repeating: 0, count: height * (width + 1))
        raw.withUnsafeMutableBufferPointer { out in
            for row in 0..<height {
                let source = UnsafeBufferPointer(rebasing: pixels[(row * width)..<((row + 1) * width)])
                _ = UnsafeMutableBufferPointer(rebasing: out[(row * (width + 1) + 1)...]).initialize(from: source)
            }
        }
        var compressed = [UInt8](repeating: 0, count: Int(compressBound(UInt(raw.count))))
        var compressedLength = UInt(compressed.count)
        let status = compressed.withUnsafeMutableBufferPointer { out in
            raw.withUnsafeBufferPointer { input in
                compress2(out.baseAddress, &compressedLength, input.baseAddress, UInt(input.count), Z_DEFAULT_COMPRESSION)
            }
        }
        guard status == Z_OK else { throw ImageError.compressionFailed(path: path, code: status) }
        compressed.removeLast(compressed.count - Int(compressedLength))

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        appendBigEndian(UInt32(width), to: &header)
        appendBigEndian(UInt32(height), to: &header)
        // Bit depth 8, colour type 0 (grayscale), compression 0, filter method 0, no interlace.
        header += [8, 0, 0, 0, 0]
        appendChunk("IHDR", header, to: &png)
        appendChunk("IDAT", compressed, to: &png)
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// Encodes and writes a grayscale PNG atomically (see `AtomicFileWriter`).
    public static func writeGrayscale(path: String, width: Int, height: Int,
                                      pixels: UnsafeBufferPointer<UInt8>) throws {
        let bytes = try encodeGrayscale(width: width, height: height, pixels: pixels, path: path)
        try AtomicFileWriter.write(bytes, to: path)
    }

    /// Array convenience for `writeGrayscale(path:width:height:pixels:)`.
    public static func writeGrayscale(path: String, width: Int, height: Int, pixels: [UInt8]) throws {
        try pixels.withUnsafeBufferPointer { try writeGrayscale(path: path, width: width, height: height, pixels: $0) }
    }

    /// Writes images with values in [-1, 1] as one PNG grid (see `ImageGrid`).
    public static func writeGrid(path: String, images: UnsafeBufferPointer<Float>, count: Int,
                                 height: Int, width: Int, columns: Int, padding: Int = ImageGrid.defaultPadding) throws {
        let grid = try ImageGrid(images: images, count: count, height: height, width: width,
                                 columns: columns, padding: padding, path: path)
        try writeGrayscale(path: path, width: grid.width, height: grid.height, pixels: grid.pixels)
    }

    /// Length, type, data, then the CRC-32 of type and data.
    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        appendBigEndian(UInt32(data.count), to: &png)
        let typeAndData = Array(type.utf8) + data
        png += typeAndData
        let crc = typeAndData.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
        appendBigEndian(UInt32(truncatingIfNeeded: crc), to: &png)
    }

    private static func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
