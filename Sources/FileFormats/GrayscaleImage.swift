/// An 8-bit grayscale image: `pixels` row-major, top row first, one byte per pixel (0 black,
/// 255 white). What the PNG reader returns and the contact sheet is made of.
public struct GrayscaleImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    /// `pixels` must hold `width * height` bytes.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height,
                     "\(pixels.count) pixels for a \(width)x\(height) image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A `width x height` image of one value (black by default).
    public init(width: Int, height: Int, value: UInt8 = 0) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: value, count: width * height))
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get { pixels[y * width + x] }
        set { pixels[y * width + x] = newValue }
    }

    /// The `width x height` region whose top-left pixel is (x, y); it must lie inside the image.
    public func cropped(x: Int, y: Int, width: Int, height: Int) -> GrayscaleImage {
        precondition(x >= 0 && y >= 0 && width >= 0 && height >= 0 && x + width <= self.width && y + height <= self.height,
                     "region \(width)x\(height) at (\(x), \(y)) outside a \(self.width)x\(self.height) image")
        var region = [UInt8]()
        region.reserveCapacity(width * height)
        for row in y ..< y + height { region += pixels[(row * self.width + x) ..< (row * self.width + x + width)] }
        return GrayscaleImage(width: width, height: height, pixels: region)
    }

    /// Copies `image` in with its top-left pixel at (x, y); it must fit.
    public mutating func paste(_ image: GrayscaleImage, x: Int, y: Int) {
        precondition(x >= 0 && y >= 0 && x + image.width <= width && y + image.height <= height,
                     "a \(image.width)x\(image.height) image at (\(x), \(y)) outside a \(width)x\(height) one")
        for row in 0 ..< image.height {
            pixels.replaceSubrange((y + row) * width + x ..< (y + row) * width + x + image.width,
                                   with: image.pixels[row * image.width ..< (row + 1) * image.width])
        }
    }
}
