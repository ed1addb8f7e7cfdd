import CGif

/// A contact sheet: rows of images stacked top to bottom, each with a number (a training step)
/// written on its left in giflib's 8x8 font, scaled up, and a 1-pixel gray line between rows.
///
/// ```
///  ┌─────────┬──────────────────────────┐
///  │    200  │ row 0's image            │   rows keep their own height; the label is
///  ├─────────┼──────────────────────────┤   right-aligned and centred on its row
///  │   1000  │ row 1's image            │
///  └─────────┴──────────────────────────┘
/// ```
public enum ContactSheet {
    /// Label text, on black.
    public static let textLevel: UInt8 = 200
    /// The line between rows.
    public static let separatorLevel: UInt8 = 90

    /// The sheet of `rows`: each row as tall as its image (or its label, if taller), a line of
    /// `separatorLevel` between rows, `padding` black pixels below the last; `scale` enlarges
    /// the 8x8 font (2: 16 pixels a character).
    public static func render(rows: [(label: Int, image: GrayscaleImage)], padding: Int = 2,
                              scale: Int = 2) -> GrayscaleImage {
        let labels = rows.map { text(String($0.label), level: textLevel, scale: scale) }
        let margin = 4 * scale
        let labelWidth = (labels.map(\.width).max() ?? 0) + 2 * margin
        let width = labelWidth + (rows.map(\.image.width).max() ?? 0)
        let heights = zip(rows, labels).map { max($0.image.height, $1.height) }
        var sheet = GrayscaleImage(width: width, height: heights.reduce(0, +) + max(0, rows.count - 1) + padding)
        var top = 0
        for (index, (row, label)) in zip(rows, labels).enumerated() {
            if index > 0 {
                for x in 0 ..< width { sheet[x, top] = separatorLevel }
                top += 1
            }
            sheet.paste(label, x: labelWidth - margin - label.width, y: top + (heights[index] - label.height) / 2)
            sheet.paste(row.image, x: labelWidth, y: top)
            top += heights[index]
        }
        return sheet
    }

    /// `string` (ASCII) in giflib's 8x8 font (`GifDrawText8x8`), each font pixel a `scale x
    /// scale` square of `level` on black.
    public static func text(_ string: String, level: UInt8, scale: Int = 1) -> GrayscaleImage {
        let characters = string.utf8.count, fontWidth = Int(GIF_FONT_WIDTH), fontHeight = Int(GIF_FONT_HEIGHT)
        let width = characters * fontWidth
        var pixels = [UInt8](repeating: 0, count: width * fontHeight)
        if characters > 0 {
            pixels.withUnsafeMutableBufferPointer { raster in
                var canvas = SavedImage()
                canvas.ImageDesc.Width = Int32(width)
                canvas.ImageDesc.Height = Int32(fontHeight)
                canvas.RasterBits = raster.baseAddress
                GifDrawText8x8(&canvas, 0, 0, string, Int32(level))
            }
        }
        var text = GrayscaleImage(width: width * scale, height: fontHeight * scale)
        for y in 0 ..< text.height {
            for x in 0 ..< text.width { text[x, y] = pixels[(y / scale) * width + x / scale] }
        }
        return text
    }
}
