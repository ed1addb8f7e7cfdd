import FileFormats

/// The global index range of rank `rank`'s shard of `count` examples split over `ranks` ranks:
/// [rank*count/ranks, (rank+1)*count/ranks) in integer arithmetic. The shards are contiguous,
/// disjoint and cover 0..<count; their sizes differ by at most one. Computed in double-width
/// arithmetic, so it cannot overflow.
public func shardRange(count: Int, rank: Int, ranks: Int) throws -> Range<Int> {
    guard ranks >= 1, (0..<ranks).contains(rank), count >= 0 else {
        throw DatasetError.invalidPartition(rank: rank, ranks: ranks)
    }
    func boundary(_ rank: Int) -> Int { ranks.dividingFullWidth(rank.multipliedFullWidth(by: count)).quotient }
    return boundary(rank)..<boundary(rank + 1)
}

/// One rank's contiguous part of an image data set, in memory as the file's pixel bytes.
///
/// Only the shard is ever held, one byte per pixel: loading streams through the (possibly
/// gzip-compressed) files, decompressing into the shard's own storage and discarding what lies
/// outside `globalRange`, so no decompressed file and no Float copy of the shard exists.
/// A batch is converted to Floats in [-1, 1] when it is copied out (`copyImage`), which keeps
/// MNIST's 60,000 images at 47 MB instead of 188 MB. It still reads both files to the end, so
/// that every rank checks the whole file (size and gzip CRC) and all ranks agree on whether
/// the data set is intact, instead of one rank failing while the others go on into a
/// collective and hang.
public struct ImageShard: Sendable {
    /// This shard's rank and the number of ranks it was cut for.
    public let rank: Int
    public let ranks: Int
    /// Examples in the whole file.
    public let totalCount: Int
    /// Global indices of this shard's examples within the file (see `shardRange`).
    public let globalRange: Range<Int>
    /// Image size in pixels.
    public let rows: Int
    public let columns: Int
    /// Shape [count, rows * columns], row-major: the file's bytes, 0 = background. The networks
    /// see `ImageShard.signedUnit` of them.
    public let pixels: [UInt8]
    /// Shape [count]; `labels[i]` belongs to image `i`.
    public let labels: [UInt8]
    /// The files the shard came from.
    public let imagesPath: String
    public let labelsPath: String

    /// Examples in this shard.
    public var count: Int { globalRange.count }
    /// Pixels (bytes here, Floats once copied out) per image.
    public var pixelsPerImage: Int { rows * columns }

    /// Loads rank `rank`'s shard of the IDX images and labels files at the given paths, each
    /// plain or gzip-compressed. Throws `DatasetError` for invalid files (each names the file)
    /// and `FileError` for files that cannot be opened or are damaged.
    public init(imagesPath: String, labelsPath: String, rank: Int, ranks: Int) throws {
        guard ranks >= 1, (0..<ranks).contains(rank) else { throw DatasetError.invalidPartition(rank: rank, ranks: ranks) }
        let imageReader = try CompressedFileReader(path: imagesPath)
        let imageHeader = try IDXHeader(reading: imageReader, kind: .images)
        let labelReader = try CompressedFileReader(path: labelsPath)
        let labelHeader = try IDXHeader(reading: labelReader, kind: .labels)
        guard imageHeader.count == labelHeader.count else {
            throw DatasetError.countMismatch(imagesPath: imagesPath, images: imageHeader.count,
                                             labelsPath: labelsPath, labels: labelHeader.count)
        }
        let range = try shardRange(count: imageHeader.count, rank: rank, ranks: ranks)

        let labels = try ImageShard.readSlice(range, of: labelHeader, from: labelReader)
        let pixels = try ImageShard.readSlice(range, of: imageHeader, from: imageReader)

        self.rank = rank
        self.ranks = ranks
        totalCount = imageHeader.count
        globalRange = range
        rows = imageHeader.dimensions[1]
        columns = imageHeader.dimensions[2]
        self.pixels = pixels
        self.labels = labels
        self.imagesPath = imagesPath
        self.labelsPath = labelsPath
    }

    /// Copies local image `index` into `destination` as `pixelsPerImage` Floats in [-1, 1]
    /// (see `signedUnit`).
    public func copyImage(_ index: Int, into destination: UnsafeMutablePointer<Float>) {
        let width = pixelsPerImage
        pixels.withUnsafeBufferPointer { source in
            ImageShard.signedUnit(UnsafeBufferPointer(rebasing: source[(index * width)..<((index + 1) * width)]),
                                  into: destination)
        }
    }

    /// Pixel bytes as the networks see them: x -> x / 127.5 - 1 in Float arithmetic, so
    /// 0 (background) is -1 and 255 is exactly 1. Sixteen at a time: vector division and
    /// subtraction round like the scalar ones, so every lane gets the scalar's bits. (A
    /// 256-entry table gives the same bits in about 1.5x the time; the vector loop converts a
    /// batch of 128 about as fast as the Float shard's copy did.)
    public static func signedUnit(_ bytes: UnsafeBufferPointer<UInt8>, into destination: UnsafeMutablePointer<Float>) {
        guard let source = bytes.baseAddress else { return }
        let count = bytes.count
        var index = 0
        while index + 16 <= count {
            let pixels = UnsafeRawPointer(source + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let values = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: pixels)) / 127.5 - 1
            UnsafeMutableRawPointer(destination + index).storeBytes(of: values, as: SIMD16<Float>.self)
            index += 16
        }
        while index < count {
            destination[index] = Float(source[index]) / 127.5 - 1
            index += 1
        }
    }

    /// Reads the examples `range` of the file behind `reader` (positioned after `header`), then
    /// reads to the end of the file to prove the rest is there and intact (and nothing more).
    /// The examples before and after the range pass through a 64 KiB sink; memory for the range
    /// grows with the bytes the file really holds, whatever its header declares.
    private static func readSlice(_ range: Range<Int>, of header: IDXHeader, from reader: CompressedFileReader) throws -> [UInt8] {
        let exampleBytes = header.bytesPerExample
        let bytes = try header.reportingTruncation {
            try reader.skip(bytes: range.lowerBound * exampleBytes)
            return try reader.read(count: range.count * exampleBytes)
        }
        let rest = try reader.skipToEnd()
        let expectedRest = (header.count - range.upperBound) * exampleBytes
        if rest < expectedRest {
            throw header.truncated(availableBytes: reader.offset - header.byteCount)
        }
        if rest > expectedRest {
            throw DatasetError.trailingBytes(path: header.path, declared: header.declaration, extraBytes: rest - expectedRest)
        }
        return bytes
    }
}
