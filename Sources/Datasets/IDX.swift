import FileFormats

/// What an IDX file is expected to hold; decides the number of dimensions and the wording of
/// errors.
public enum IDXKind: Sendable, Equatable {
    /// [count, rows, columns] unsigned bytes, 0 = background.
    case images
    /// [count] unsigned bytes (class indices).
    case labels

    /// Dimensions this kind has.
    public var dimensionCount: Int { self == .images ? 3 : 1 }
    /// The big-endian magic number of an unsigned-byte file of this kind.
    public var magic: UInt32 { 0x0000_0800 | UInt32(dimensionCount) }
    var noun: String { self == .images ? "images" : "labels" }
    var shapeText: String { self == .images ? "[count, rows, columns]" : "[count]" }
}

/// The header of an unsigned-byte IDX file, validated.
///
/// IDX (LeCun's MNIST format): two zero bytes, an element type byte (0x08 = uint8), a
/// dimension count byte, one big-endian UInt32 per dimension, then the elements row-major.
public struct IDXHeader: Sendable, Equatable {
    /// The file the header was read from; errors name it.
    public let path: String
    public let kind: IDXKind
    /// The dimensions, outermost first: [count, rows, columns] or [count].
    public let dimensions: [Int]

    /// Number of examples (the first dimension).
    public var count: Int { dimensions[0] }
    /// Bytes per example: rows x columns for images, 1 for labels.
    public var bytesPerExample: Int { dimensions.dropFirst().reduce(1, *) }
    /// Size of the header in bytes.
    public var byteCount: Int { 4 + 4 * dimensions.count }
    /// Data bytes the header declares.
    public var dataByteCount: Int { count * bytesPerExample }

    /// "60000 images of 28x28" or "60000 labels", as used in error messages.
    var declaration: String {
        kind == .images ? "\(count) images of \(dimensions[1])x\(dimensions[2])" : "\(count) labels"
    }

    /// Reads and validates the header at the start of `reader`, leaving the reader at the
    /// first data byte.
    public init(reading reader: CompressedFileReader, kind: IDXKind) throws {
        path = reader.path
        self.kind = kind
        var magic: [UInt8] = [0, 0, 0, 0]
        try IDXHeader.readHeaderBytes(&magic, reader)
        let magicValue = magic.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard magic[0] == 0, magic[1] == 0 else { throw DatasetError.notIDX(path: path, magic: magicValue, kind: kind) }
        guard magic[2] == 0x08 else { throw DatasetError.unsupportedElementType(path: path, typeCode: magic[2]) }
        guard Int(magic[3]) == kind.dimensionCount else {
            throw DatasetError.wrongDimensionCount(path: path, found: Int(magic[3]), kind: kind)
        }
        var sizes = [UInt8](repeating: 0, count: 4 * kind.dimensionCount)
        try IDXHeader.readHeaderBytes(&sizes, reader)
        dimensions = (0..<kind.dimensionCount).map { index in
            sizes[(4 * index)..<(4 * index + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
        // Three 32-bit dimensions can multiply past Int.max; no real data set comes near 2^40.
        let (total, overflow) = dimensions.reduce((1, false)) { partial, dimension in
            let (product, overflow) = partial.0.multipliedReportingOverflow(by: dimension)
            return (product, partial.1 || overflow)
        }
        guard !overflow, total < 1 << 40 else { throw DatasetError.implausibleSize(path: path, dimensions: dimensions) }
        guard total > 0 else { throw DatasetError.emptySet(path: path, declared: declaration) }
    }

    /// Fills `bytes` from the header region, reporting a short file as a truncated header.
    private static func readHeaderBytes(_ bytes: inout [UInt8], _ reader: CompressedFileReader) throws {
        do {
            try bytes.withUnsafeMutableBytes { try reader.read(into: $0) }
        } catch let FileError.truncated(_, offset, _, available) {
            throw DatasetError.headerTruncated(path: reader.path, size: offset + available)
        }
    }

    /// Runs `body`, which reads this file's data, turning a short read into an error that
    /// compares the header's promise with what the file holds.
    func reportingTruncation<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let FileError.truncated(_, offset, _, available) {
            throw truncated(availableBytes: offset + available - byteCount)
        }
    }

    /// Reads what is left of the file after the declared data: nothing, or the file is refused.
    func expectEnd(of reader: CompressedFileReader) throws {
        let extra = try reader.skipToEnd()
        if extra > 0 { throw DatasetError.trailingBytes(path: path, declared: declaration, extraBytes: extra) }
    }

    func truncated(availableBytes: Int) -> DatasetError {
        .truncated(path: path, declared: declaration, expectedBytes: dataByteCount, availableBytes: availableBytes)
    }
}

/// Reading whole IDX files and writing them.
public enum IDX {
    /// Reads a whole unsigned-byte IDX file, plain or gzip-compressed: its header and all data
    /// bytes. For training data use `ImageShard`, which keeps only one rank's part.
    public static func read(path: String, kind: IDXKind) throws -> (header: IDXHeader, bytes: [UInt8]) {
        let reader = try CompressedFileReader(path: path)
        let header = try IDXHeader(reading: reader, kind: kind)
        let bytes = try header.reportingTruncation { try reader.read(count: header.dataByteCount) }
        try header.expectEnd(of: reader)
        return (header, bytes)
    }

    /// Writes `count` images of `rows x columns` bytes (row-major, contiguous) as a plain
    /// (uncompressed) IDX file, atomically.
    public static func writeImages(path: String, count: Int, rows: Int, columns: Int,
                                   pixels: UnsafeBufferPointer<UInt8>) throws {
        try write(path: path, dimensions: [count, rows, columns], bytes: UnsafeRawBufferPointer(pixels))
    }

    /// Writes images with Float pixels in [-1, 1] (a generator's output, shape
    /// [count, rows, columns]) as a plain IDX file, mapping -1 -> 0 and 1 -> 255 with clamping.
    public static func writeImages(path: String, count: Int, rows: Int, columns: Int,
                                   signedPixels: UnsafeBufferPointer<Float>) throws {
        let bytes = signedPixels.map(byteFromSignedUnit)
        try bytes.withUnsafeBufferPointer {
            try writeImages(path: path, count: count, rows: rows, columns: columns, pixels: $0)
        }
    }

    /// Writes labels (one byte each) as a plain IDX file, atomically.
    public static func writeLabels(path: String, labels: [UInt8]) throws {
        try labels.withUnsafeBytes { try write(path: path, dimensions: [labels.count], bytes: $0) }
    }

    private static func write(path: String, dimensions: [Int], bytes: UnsafeRawBufferPointer) throws {
        guard dimensions.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) else {
            throw DatasetError.invalidWrite(path: path, problem: "dimensions \(dimensions) do not fit IDX's 32-bit sizes")
        }
        let (expected, overflow) = dimensions.reduce((1, false)) { partial, dimension in
            let (product, overflow) = partial.0.multipliedReportingOverflow(by: dimension)
            return (product, partial.1 || overflow)
        }
        guard !overflow, expected == bytes.count else {
            throw DatasetError.invalidWrite(
                path: path, problem: "dimensions \(dimensions) need \(overflow ? "more than Int.max" : String(expected)) bytes "
                    + "but \(bytes.count) were given")
        }
        var header: [UInt8] = [0, 0, 0x08, UInt8(dimensions.count)]
        for dimension in dimensions {
            header += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: dimension >> $0) }
        }
        let writer = try AtomicFileWriter(path: path)
        try writer.write(header)
        try writer.write(bytes)
        try writer.commit()
    }
}
