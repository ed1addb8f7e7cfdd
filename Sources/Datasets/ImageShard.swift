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

/// One rank's contiguous part of an image data set, in memory as Float pixels in [-1, 1].
///
/// Only the shard is ever held: loading streams through the (possibly gzip-compressed) files,
/// decompressing and discarding what lies outside `globalRange`. It still reads both files to
/// the end, so that every rank checks the whole file (size and gzip CRC) and all ranks agree
/// on whether the data set is intact, instead of one rank failing while the others go on into
/// a collective and hang.
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
    /// Shape [count, rows * columns], row-major; pixel byte x is stored as x / 127.5 - 1, so
    /// 0 (background) is -1 and 255 is exactly 1.
    public let pixels: [Float]
    /// Shape [count]; `labels[i]` belongs to image `i`.
    public let labels: [UInt8]
    /// The files the shard came from.
    public let imagesPath: String
    public let labelsPath: String

    /// Examples in this shard.
    public var count: Int { globalRange.count }
    /// Floats per image.
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

        var labels = [UInt8](repeating: 0, count: range.count)
        try labels.withUnsafeMutableBytes { bytes in
            try ImageShard.readSlice(range, of: labelHeader, from: labelReader) { start, chunk in
                UnsafeMutableRawBufferPointer(rebasing: bytes[start...]).copyMemory(from: chunk)
            }
        }

        let pixelsPerImage = imageHeader.bytesPerExample
        var pixels = [Float](repeating: 0, count: range.count * pixelsPerImage)
        try pixels.withUnsafeMutableBufferPointer { out in
            try signedUnitTable.withUnsafeBufferPointer { table in
                try ImageShard.readSlice(range, of: imageHeader, from: imageReader) { start, chunk in
                    // A table lookup is exact (255 maps to 1, not 1.0000001) and cheaper than a division.
                    let bytes = chunk.assumingMemoryBound(to: UInt8.self)
                    let target = out.baseAddress! + start
                    for index in 0..<bytes.count { target[index] = table[Int(bytes[index])] }
                }
            }
        }

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

    /// Streams the examples `range` of the file behind `reader` (positioned after `header`)
    /// through `consume(byteOffsetInSlice, chunk)` in chunks of whole examples, then reads to the
    /// end of the file to prove the rest is there and intact.
    private static func readSlice(_ range: Range<Int>, of header: IDXHeader, from reader: CompressedFileReader,
                                  _ consume: (Int, UnsafeRawBufferPointer) -> Void) throws {
        let exampleBytes = header.bytesPerExample
        let chunkExamples = max(1, (1 << 18) / exampleBytes)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkExamples * exampleBytes, alignment: 16)
        defer { buffer.deallocate() }
        try header.reportingTruncation {
            try reader.skip(bytes: range.lowerBound * exampleBytes)
            var done = 0
            while done < range.count {
                let examples = min(chunkExamples, range.count - done)
                let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(examples * exampleBytes)])
                try reader.read(into: chunk)
                consume(done * exampleBytes, UnsafeRawBufferPointer(chunk))
                done += examples
            }
        }
        let rest = try reader.skipToEnd()
        let expectedRest = (header.count - range.upperBound) * exampleBytes
        if rest < expectedRest {
            throw header.truncated(availableBytes: reader.offset - header.byteCount)
        }
    }
}

/// Byte x -> x / 127.5 - 1.
private let signedUnitTable: [Float] = (0...255).map { Float($0) / 127.5 - 1 }
