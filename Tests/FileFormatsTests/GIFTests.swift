import TestSupport
import XCTest
@testable import FileFormats

/// The animated GIF, read back with giflib's own reader (DGifSlurp).
final class GIFTests: XCTestCase {
    /// Three 37x11 frames holding every gray level between them.
    func frames() -> [GrayscaleImage] {
        (0 ..< 3).map { k in
            GrayscaleImage(width: 37, height: 11, pixels: (0 ..< 37 * 11).map { UInt8(truncatingIfNeeded: $0 * (k + 3) + k * 101) })
        }
    }

    func testFramesReadBackAsWrittenWithTheirDelaysLoopingForever() throws {
        let path = makeTemporaryDirectory(self) + "/a.gif"
        var animation = try GIFAnimation(width: 37, height: 11, path: path)
        for (k, frame) in frames().enumerated() { try animation.append(frame, id: 10 * k) }
        try animation.write(delay: 20, lastDelay: 200)

        let gif = try XCTUnwrap(DecodedGIF(path: path))
        // (giflib's DGifGetGifVersion says GIF87a for either: it looks at the '8'.)
        XCTAssertEqual(String(decoding: fileBytes(path).prefix(6), as: UTF8.self), "GIF89a")
        XCTAssertEqual([gif.width, gif.height], [37, 11])
        XCTAssertEqual(gif.palette, (0 ... 255).map { [UInt8($0), UInt8($0), UInt8($0)] }, "gray level v is index v")
        XCTAssertEqual(gif.frames, frames().map(\.pixels))
        XCTAssertEqual(gif.placements, Array(repeating: [0, 0, 37, 11], count: 3))
        XCTAssertEqual(gif.delays, [20, 20, 200])
        XCTAssertEqual(gif.loopCount, 0)
        XCTAssertEqual(fileBytes(path).last, 0x3B, "the trailer")
    }

    /// Frames are encoded once: removing some and writing again gives the file a fresh
    /// animation of the remaining frames gives.
    func testRemovingFramesEqualsNeverAddingThem() throws {
        let all = frames()
        var animation = try GIFAnimation(width: 37, height: 11)
        for (k, frame) in all.enumerated() { try animation.append(frame, id: k) }
        animation.removeFrames { $0 == 1 }
        XCTAssertEqual(animation.frames.map(\.id), [0, 2])
        var fresh = try GIFAnimation(width: 37, height: 11)
        try fresh.append(all[0], id: 0)
        try fresh.append(all[2], id: 2)
        XCTAssertEqual(try animation.encoded(delay: 5, lastDelay: 50), try fresh.encoded(delay: 5, lastDelay: 50))

        let path = makeTemporaryDirectory(self) + "/b.gif"
        try AtomicFileWriter.write(try animation.encoded(delay: 5, lastDelay: 50), to: path)
        let gif = try XCTUnwrap(DecodedGIF(path: path))
        XCTAssertEqual(gif.frames, [all[0].pixels, all[2].pixels])
        XCTAssertEqual(gif.delays, [5, 50])
    }

    /// One frame (a run's first grid) is a valid animation too, and so is a large flat one.
    func testOneFrameAndFlatFrames() throws {
        let path = makeTemporaryDirectory(self) + "/c.gif"
        var animation = try GIFAnimation(width: 302, height: 302, path: path)
        try animation.append(GrayscaleImage(width: 302, height: 302, value: 255), id: 0)
        try animation.write(delay: 20, lastDelay: 200)
        let gif = try XCTUnwrap(DecodedGIF(path: path))
        XCTAssertEqual(gif.frames, [[UInt8](repeating: 255, count: 302 * 302)])
        XCTAssertEqual(gif.delays, [200])
    }

    func testFramesOfAnotherSizeAreRefused() throws {
        var animation = try GIFAnimation(width: 4, height: 3, path: "x.gif")
        assertThrows("cannot add a 3x4 frame to x.gif: its frames are 4x3 (every frame of an animation has its size, at most 65535x65535)") {
            try animation.append(GrayscaleImage(width: 3, height: 4), id: 0)
        }
        assertThrows("cannot add a 70000x3 frame to y.gif: its frames are 70000x3 (every frame of an animation has its size, "
                     + "at most 65535x65535)") {
            _ = try GIFAnimation(width: 70000, height: 3, path: "y.gif")
        }
    }
}
