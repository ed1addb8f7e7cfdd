import CGif

/// giflib failed to encode (only possible when out of memory, or on a caller's bad size).
public enum GIFError: Error, CustomStringConvertible, Equatable, Sendable {
    case encodingFailed(path: String, step: String, reason: String)
    /// A frame of another size than the animation's, or a size GIF cannot hold (16 bits).
    case invalidFrame(path: String, width: Int, height: Int, expectedWidth: Int, expectedHeight: Int)

    public var description: String {
        switch self {
        case let .encodingFailed(path, step, reason):
            return "cannot write \(path): giflib's \(step) failed: \(reason)"
        case let .invalidFrame(path, width, height, expectedWidth, expectedHeight):
            return "cannot add a \(width)x\(height) frame to \(path): its frames are \(expectedWidth)x\(expectedHeight) "
                + "(every frame of an animation has its size, at most 65535x65535)"
        }
    }
}

/// An animated GIF89a of equally sized 8-bit grayscale frames, looping forever, encoded by
/// giflib (Debian's libgif) with a 256-level gray palette, so pixel value v is palette index v.
///
/// Each frame is LZW-encoded once, when it is appended, and kept encoded (its image descriptor
/// and data, as giflib wrote them); `encoded` has giflib write a stream (header, palette, the
/// loop extension, each frame's control block with its delay, the trailer) and puts the kept
/// frames' bytes between the control blocks. Rewriting a long animation after each new frame
/// then costs the new frame's encoding and a copy, and memory holds compressed frames only.
public struct GIFAnimation {
    public let width: Int
    public let height: Int
    /// Used in error messages.
    public let path: String
    /// The frames, in order: each one's identifier (the caller's: a step) and encoded image.
    public private(set) var frames: [(id: Int, image: [UInt8])] = []

    public init(width: Int, height: Int, path: String = "<memory>") throws {
        guard (1 ... 65535).contains(width), (1 ... 65535).contains(height) else {
            throw GIFError.invalidFrame(path: path, width: width, height: height, expectedWidth: width, expectedHeight: height)
        }
        self.width = width
        self.height = height
        self.path = path
    }

    /// Encodes `image` (grayscale, this animation's size) and appends it as the last frame.
    public mutating func append(_ image: GrayscaleImage, id: Int) throws {
        guard image.width == width, image.height == height else {
            throw GIFError.invalidFrame(path: path, width: image.width, height: image.height,
                                        expectedWidth: width, expectedHeight: height)
        }
        var pixels = image.pixels  // EGifPutLine masks the line in place
        let encoder = try GIFStream(path: path)
        try encoder.putScreen(width: width, height: height)
        let start = encoder.sink.bytes.count
        try encoder.check(EGifPutImageDesc(encoder.file, 0, 0, Int32(width), Int32(height), false, nil), "EGifPutImageDesc")
        try pixels.withUnsafeMutableBufferPointer {
            try encoder.check(EGifPutLine(encoder.file, $0.baseAddress, Int32($0.count)), "EGifPutLine")
        }
        // The last pixel flushed the LZW codes and the data's terminating block.
        frames.append((id, Array(encoder.sink.bytes[start...])))
    }

    /// Drops the frames `shouldRemove` picks.
    public mutating func removeFrames(where shouldRemove: (_ id: Int) -> Bool) {
        frames.removeAll { shouldRemove($0.id) }
    }

    /// The GIF file: every frame shown `delay` hundredths of a second, the last `lastDelay`.
    public func encoded(delay: Int, lastDelay: Int) throws -> [UInt8] {
        let stream = try GIFStream(path: path)
        try stream.putScreen(width: width, height: height)
        // NETSCAPE2.0 application extension: loop count 0, forever.
        try stream.check(EGifPutExtensionLeader(stream.file, APPLICATION_EXT_FUNC_CODE), "EGifPutExtensionLeader")
        try stream.check(EGifPutExtensionBlock(stream.file, 11, Array("NETSCAPE2.0".utf8)), "EGifPutExtensionBlock")
        try stream.check(EGifPutExtensionBlock(stream.file, 3, [1, 0, 0] as [UInt8]), "EGifPutExtensionBlock")
        try stream.check(EGifPutExtensionTrailer(stream.file), "EGifPutExtensionTrailer")
        for (index, frame) in frames.enumerated() {
            var control = GraphicsControlBlock(DisposalMode: DISPOSE_DO_NOT, UserInputFlag: false,
                                               DelayTime: Int32(clamping: index == frames.count - 1 ? lastDelay : delay),
                                               TransparentColor: NO_TRANSPARENT_COLOR)
            var extensionBytes = [GifByteType](repeating: 0, count: 4)
            let length = EGifGCBToExtension(&control, &extensionBytes)
            try stream.check(EGifPutExtension(stream.file, GRAPHICS_EXT_FUNC_CODE, Int32(length), extensionBytes), "EGifPutExtension")
            stream.sink.bytes += frame.image
        }
        try stream.close()  // the trailer
        return stream.sink.bytes
    }

    /// Writes `encoded(delay:lastDelay:)` to `path`, atomically (see `AtomicFileWriter`).
    public func write(delay: Int, lastDelay: Int) throws {
        try AtomicFileWriter.write(try encoded(delay: delay, lastDelay: lastDelay), to: path)
    }
}

/// One giflib encoder writing into memory (`sink`), closed (freed) when dropped.
private final class GIFStream {
    final class Sink { var bytes: [UInt8] = [] }
    let sink = Sink()
    let path: String
    private(set) var file: UnsafeMutablePointer<GifFileType>!

    init(path: String) throws {
        self.path = path
        var error: Int32 = 0
        // The callback cannot capture: it finds the sink through the file's UserData.
        file = EGifOpen(Unmanaged.passUnretained(sink).toOpaque(), { file, bytes, count in
            guard let file, let user = file.pointee.UserData else { return 0 }
            let sink = Unmanaged<Sink>.fromOpaque(user).takeUnretainedValue()
            if count > 0, let bytes { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: bytes, count: Int(count))) }
            return count
        }, &error)
        guard file != nil else { throw GIFError.encodingFailed(path: path, step: "EGifOpen", reason: reason(error)) }
        EGifSetGifVersion(file, true)
    }

    deinit { if let file { EGifCloseFile(file, nil) } }

    /// The header and logical screen, with the global palette: index v is gray level v.
    func putScreen(width: Int, height: Int) throws {
        let levels = (0 ..< 256).map { GifColorType(Red: GifByteType($0), Green: GifByteType($0), Blue: GifByteType($0)) }
        guard let palette = GifMakeMapObject(256, levels) else {
            throw GIFError.encodingFailed(path: path, step: "GifMakeMapObject", reason: "out of memory")
        }
        defer { GifFreeMapObject(palette) }
        try check(EGifPutScreenDesc(file, Int32(width), Int32(height), 8, 0, palette), "EGifPutScreenDesc")
    }

    /// Writes the trailer and frees the encoder.
    func close() throws {
        var error: Int32 = 0
        let status = EGifCloseFile(file, &error)
        file = nil
        guard status == GIF_OK else { throw GIFError.encodingFailed(path: path, step: "EGifCloseFile", reason: reason(error)) }
    }

    func check(_ status: Int32, _ step: String) throws {
        guard status == GIF_OK else { throw GIFError.encodingFailed(path: path, step: step, reason: reason(file.pointee.Error)) }
    }

    private func reason(_ code: Int32) -> String {
        GifErrorString(code).map { String(cString: $0) } ?? "error \(code)"
    }
}
