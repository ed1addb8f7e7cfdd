/// Maps a pixel value in [-1, 1] to a byte: -1 -> 0, 1 -> 255, rounded to nearest; values
/// outside the range are clamped and NaN becomes 0, so a diverged generator still yields a
/// (black) image instead of a crash.
@inlinable
public func byteFromSignedUnit(_ value: Float) -> UInt8 {
    let scaled = (value + 1) * 127.5
    // `!(scaled > 0)` also catches NaN, which compares false with everything.
    if !(scaled > 0) { return 0 }
    if scaled >= 255 { return 255 }
    return UInt8(scaled.rounded(.toNearestOrEven))
}

/// Several equally sized grayscale images tiled into one 8-bit image, for sample sheets.
///
/// Input: `count` images of `height x width` Float pixels in [-1, 1], row-major and contiguous
/// (shape [count, height, width]). Output: image `k` sits at grid row `k / columns`, column
/// `k % columns`, with `padding` black pixels between images and around the border; cells after
/// the last image stay black. When `count < columns` the grid is only `count` images wide.
public struct ImageGrid: Sendable {
    /// Black pixels between images and around the border, unless a caller asks for others.
    public static let defaultPadding = 2

    /// Grid size in pixels.
    public let width: Int
    public let height: Int
    /// Row-major bytes, `width * height` of them (0 black, 255 white).
    public let pixels: [UInt8]

    /// Tiles `images`; `path` is used only in error messages.
    public init(images: UnsafeBufferPointer<Float>, count: Int, height imageHeight: Int, width imageWidth: Int,
                columns: Int, padding: Int = ImageGrid.defaultPadding, path: String = "<memory>") throws {
        guard count > 0, columns > 0 else { throw ImageError.invalidGrid(path: path, count: count, columns: columns) }
        guard imageHeight > 0, imageWidth > 0, padding >= 0, imageHeight <= 1 << 20, imageWidth <= 1 << 20,
              padding <= 1 << 10 else {
            throw ImageError.invalidSize(path: path, width: imageWidth, height: imageHeight)
        }
        let perImage = imageHeight * imageWidth
        let (expected, overflow) = count.multipliedReportingOverflow(by: perImage)
        guard !overflow, images.count == expected else {
            throw ImageError.pixelCountMismatch(path: path, expected: overflow ? Int.max : expected,
                                                actual: images.count)
        }
        let gridColumns = min(columns, count)
        let gridRows = (count + gridColumns - 1) / gridColumns
        let width = gridColumns * (imageWidth + padding) + padding
        let height = gridRows * (imageHeight + padding) + padding
        var pixels = [UInt8](repeating: 0, count: width * height)
        pixels.withUnsafeMutableBufferPointer { out in
            for image in 0..<count {
                let top = padding + (image / gridColumns) * (imageHeight + padding)
                let left = padding + (image % gridColumns) * (imageWidth + padding)
                for y in 0..<imageHeight {
                    let source = image * perImage + y * imageWidth
                    let target = (top + y) * width + left
                    for x in 0..<imageWidth { out[target + x] = byteFromSignedUnit(images[source + x]) }
                }
            }
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Array convenience for `init(images:count:height:width:columns:padding:path:)`.
    public init(images: [Float], count: Int, height: Int, width: Int, columns: Int,
                padding: Int = ImageGrid.defaultPadding) throws {
        self = try images.withUnsafeBufferPointer {
            try ImageGrid(images: $0, count: count, height: height, width: width, columns: columns, padding: padding)
        }
    }
}
