import CGif
import XCTest

/// A GIF as giflib's reader sees it (`DGifSlurp`): what the GIF tests compare with what was written.
public struct DecodedGIF {
    public var width: Int
    public var height: Int
    /// The global palette's (red, green, blue) entries.
    public var palette: [[UInt8]]
    /// Each frame's palette indices, row-major (`width x height` when it covers the screen).
    public var frames: [[UInt8]]
    /// Each frame's position and size: (left, top, width, height).
    public var placements: [[Int]]
    /// Each frame's delay, in hundredths of a second, from its graphics control block.
    public var delays: [Int]
    /// The NETSCAPE2.0 loop count (0: forever), nil without that extension.
    public var loopCount: Int?

    /// Reads `path` with giflib; fails the test (and returns nil) where giflib refuses it.
    public init?(path: String, file: StaticString = #filePath, line: UInt = #line) {
        var error: Int32 = 0
        guard let gif = DGifOpenFileName(path, &error) else {
            XCTFail("giflib cannot open \(path): \(String(cString: GifErrorString(error)))", file: file, line: line)
            return nil
        }
        defer { DGifCloseFile(gif, nil) }
        guard DGifSlurp(gif) == GIF_OK else {
            XCTFail("giflib cannot read \(path): \(String(cString: GifErrorString(gif.pointee.Error)))", file: file, line: line)
            return nil
        }
        width = Int(gif.pointee.SWidth)
        height = Int(gif.pointee.SHeight)
        if let map = gif.pointee.SColorMap {
            palette = (0 ..< Int(map.pointee.ColorCount)).map { i in
                let c = map.pointee.Colors[i]
                return [c.Red, c.Green, c.Blue]
            }
        } else {
            palette = []
        }
        frames = []
        placements = []
        delays = []
        loopCount = nil
        for index in 0 ..< Int(gif.pointee.ImageCount) {
            let image = gif.pointee.SavedImages[index]
            let d = image.ImageDesc
            placements.append([Int(d.Left), Int(d.Top), Int(d.Width), Int(d.Height)])
            frames.append(Array(UnsafeBufferPointer(start: image.RasterBits, count: Int(d.Width * d.Height))))
            var control = GraphicsControlBlock()
            delays.append(DGifSavedExtensionToGCB(gif, Int32(index), &control) == GIF_OK ? Int(control.DelayTime) : -1)
            // An application extension's blocks: its 11-byte name, then continuation blocks.
            let blocks = (0 ..< Int(image.ExtensionBlockCount)).map { image.ExtensionBlocks[$0] }
            for (i, block) in blocks.enumerated() where block.Function == APPLICATION_EXT_FUNC_CODE
                && Array(UnsafeBufferPointer(start: block.Bytes, count: Int(block.ByteCount))) == Array("NETSCAPE2.0".utf8)
                && i + 1 < blocks.count && blocks[i + 1].ByteCount == 3 {
                let data = UnsafeBufferPointer(start: blocks[i + 1].Bytes, count: 3)
                if data[0] == 1 { loopCount = Int(data[1]) | Int(data[2]) << 8 }
            }
        }
    }
}
