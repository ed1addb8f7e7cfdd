import Datasets
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Images to evaluate from a uint8 IDX images file (as `gantry sample --out FILE.idx` and the
/// TensorFlow anchor script write them), as Floats in [-1, 1].
public struct SampleImages {
    public let path: String
    /// Images read (the first `count` of the file), and images the file holds.
    public let count: Int
    public let available: Int
    /// `count x rows x columns` values in [-1, 1] (`ImageShard.signedUnit` of the bytes).
    public let pixels: [Float]

    /// Reads the first `count` images of `path` (all of them when nil), which must be of
    /// `rows x columns`. Throws `EvaluationError` for a missing file, another image size, fewer
    /// than 2 images, or fewer images than `count`; `DatasetError` or `FileError` for a file that is no IDX images file.
    public init(path: String, count: Int?, rows: Int, columns: Int) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw EvaluationError.missingSamples(path: path) }
        let (header, bytes) = try IDX.read(path: path, kind: .images)
        let (fileRows, fileColumns) = (header.dimensions[1], header.dimensions[2])
        guard fileRows == rows, fileColumns == columns else {
            throw EvaluationError.imageSize(path: path, rows: fileRows, columns: fileColumns,
                                            expectedRows: rows, expectedColumns: columns)
        }
        let count = count ?? header.count
        guard count >= 2 else { throw EvaluationError.tooFewImages(count: count) }
        guard count <= header.count else {
            throw EvaluationError.countExceedsFile(path: path, requested: count, available: header.count)
        }
        self.path = path
        self.count = count
        available = header.count
        pixels = [Float](unsafeUninitializedCapacity: count * rows * columns) { buffer, initialized in
            bytes.withUnsafeBufferPointer {
                ImageShard.signedUnit(UnsafeBufferPointer(rebasing: $0[0 ..< count * rows * columns]), into: buffer.baseAddress!)
            }
            initialized = count * rows * columns
        }
    }
}
