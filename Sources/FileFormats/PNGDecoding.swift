import CZlib

/// A PNG the reader refuses; `description` is one line naming the file, the problem and the fix.
public enum PNGError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The first 8 bytes are not PNG's signature.
    case notPNG(path: String)
    /// A valid PNG of a kind the reader does not decode (colour, 16-bit, interlaced, too large).
    case unsupported(path: String, detail: String)
    /// The file breaks PNG's rules: a chunk past the end, a CRC mismatch, bad image data.
    case damaged(path: String, detail: String)

    public var description: String {
        switch self {
        case let .notPNG(path):
            return "\(path) is not a PNG file (it does not start with the PNG signature)"
        case let .unsupported(path, detail):
            return "cannot read \(path): \(detail) (Gantry reads 8-bit grayscale, non-interlaced PNGs, as it writes them)"
        case let .damaged(path, detail):
            return "\(path) is damaged: \(detail) (write it again, or delete it)"
        }
    }
}

extension PNG {
    /// The largest image the reader decodes, in pixels (a 302x302 sample grid has 91,204).
    public static let maximumPixels = 1 << 26

    /// Reads an 8-bit grayscale, non-interlaced PNG (what `encodeGrayscale` writes), rows of any
    /// of the five filter types, image data in any number of IDAT chunks; every chunk's CRC-32
    /// is checked. Errors: `FileError` (opening, reading), `PNGError` (the content).
    public static func readGrayscale(path: String) throws -> GrayscaleImage {
        try decodeGrayscale(try CompressedFileReader(path: path).readAll(), path: path)
    }

    /// Decodes the bytes of a PNG file (see `readGrayscale`); `path` is used only in error messages.
    public static func decodeGrayscale(_ png: [UInt8], path: String = "<memory>") throws -> GrayscaleImage {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard png.count >= 8, Array(png[0 ..< 8]) == signature else { throw PNGError.notPNG(path: path) }
        func bigEndian(_ at: Int) -> Int { png[at ..< at + 4].reduce(0) { $0 << 8 | Int($1) } }

        var header: [UInt8]?
        var data: [UInt8] = []
        var at = 8, ended = false
        while !ended {
            guard at + 8 <= png.count else {
                throw PNGError.damaged(path: path, detail: "it ends at byte \(png.count) without an IEND chunk")
            }
            let length = bigEndian(at)
            let typeBytes = png[at + 4 ..< at + 8]
            let type = escapingLineBreaks(String(decoding: typeBytes, as: UTF8.self))
            guard length <= png.count - at - 12 else {
                throw PNGError.damaged(path: path, detail: "chunk \(type) at byte \(at) runs past the end of the file")
            }
            let crc = png.withUnsafeBufferPointer { crc32(0, $0.baseAddress! + at + 4, UInt32(4 + length)) }
            guard UInt(bigEndian(at + 8 + length)) == UInt(crc) else {
                throw PNGError.damaged(path: path, detail: "chunk \(type) at byte \(at) fails its CRC-32")
            }
            let body = png[at + 8 ..< at + 8 + length]
            switch Array(typeBytes) {
            case Array("IHDR".utf8) where header == nil && at == 8:
                guard length == 13 else { throw PNGError.damaged(path: path, detail: "its IHDR chunk holds \(length) bytes, not 13") }
                header = Array(body)
            case _ where header == nil:
                throw PNGError.damaged(path: path, detail: "its first chunk is \(type), not IHDR")
            case Array("IDAT".utf8): data += body
            case Array("IEND".utf8): ended = true
            default: break  // ancillary chunks (text, gamma, ...) do not change the pixels
            }
            at += 12 + length
        }

        let h = header!
        let width = h[0 ..< 4].reduce(0) { $0 << 8 | Int($1) }, height = h[4 ..< 8].reduce(0) { $0 << 8 | Int($1) }
        guard width > 0, height > 0 else { throw PNGError.damaged(path: path, detail: "its size is \(width)x\(height)") }
        guard h[8] == 8, h[9] == 0 else {
            throw PNGError.unsupported(path: path, detail: "bit depth \(h[8]), colour type \(h[9])")
        }
        guard h[10] == 0, h[11] == 0, h[12] <= 1 else {
            throw PNGError.damaged(path: path, detail: "compression \(h[10]), filter method \(h[11]), interlace \(h[12]) are not PNG's")
        }
        guard h[12] == 0 else { throw PNGError.unsupported(path: path, detail: "it is interlaced") }
        guard width <= maximumPixels / height else {
            throw PNGError.unsupported(path: path, detail: "\(width)x\(height) is larger than \(maximumPixels) pixels")
        }
        // Each row is a filter type byte, then its pixels. Deflate expands at most 1032:1, so a
        // small file declaring a large image is refused before anything that size is allocated.
        let rowBytes = width + 1, rawCount = height * rowBytes
        guard rawCount <= 1032 * data.count + 64 else {
            throw PNGError.damaged(path: path, detail: "\(data.count) bytes of image data cannot hold \(width)x\(height) pixels")
        }
        var raw = [UInt8](repeating: 0, count: rawCount)
        var rawLength = UInt(rawCount)
        let status = raw.withUnsafeMutableBufferPointer { out in
            data.withUnsafeBufferPointer { uncompress(out.baseAddress, &rawLength, $0.baseAddress, UInt($0.count)) }
        }
        guard status == Z_OK, Int(rawLength) == rawCount else {
            let rows = "\(height) rows of a filter byte and \(width) pixels"
            let detail = switch status {
            case Z_OK: "its image data inflates to \(rawLength) bytes, not \(rawCount) (\(rows))"
            case Z_BUF_ERROR: "its image data is cut short, or inflates to more than \(rawCount) bytes (\(rows))"
            case Z_DATA_ERROR: "its image data is not zlib data"
            default: "zlib error \(status) inflating its image data"
            }
            throw PNGError.damaged(path: path, detail: detail)
        }

        // Undo each row's filter (PNG specification, section 9): a pixel is one byte, so the
        // pixel to the left is the byte before it.
        var pixels = [UInt8](repeating: 0, count: width * height)
        try raw.withUnsafeBufferPointer { raw in
            try pixels.withUnsafeMutableBufferPointer { out in
                for y in 0 ..< height {
                    let filter = raw[y * rowBytes], source = y * rowBytes + 1, row = y * width, above = row - width
                    for x in 0 ..< width {
                        let a = x > 0 ? Int(out[row + x - 1]) : 0, b = y > 0 ? Int(out[above + x]) : 0
                        let c = x > 0 && y > 0 ? Int(out[above + x - 1]) : 0
                        let predicted: Int
                        switch filter {
                        case 0: predicted = 0
                        case 1: predicted = a
                        case 2: predicted = b
                        case 3: predicted = (a + b) / 2
                        case 4:
                            let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                            predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                        default:
                            throw PNGError.damaged(path: path, detail: "row \(y) has filter type \(filter) (PNG defines 0 to 4)")
                        }
                        out[row + x] = UInt8(truncatingIfNeeded: Int(raw[source + x]) + predicted)
                    }
                }
            }
        }
        return GrayscaleImage(width: width, height: height, pixels: pixels)
    }

    /// Encodes and writes `image` as a grayscale PNG, atomically.
    public static func writeGrayscale(path: String, image: GrayscaleImage) throws {
        try writeGrayscale(path: path, width: image.width, height: image.height, pixels: image.pixels)
    }
}
