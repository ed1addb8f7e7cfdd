/// Why a data set could not be found, read or batched.
///
/// `description` is one line naming the file (or directory), the problem and the fix; the CLI
/// prints it as is. Every rank that reads the same files fails with the same error.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The first two bytes are not zero, so this is no IDX file (a gzip file has 1F 8B there).
    case notIDX(path: String, magic: UInt32, kind: IDXKind)
    /// An IDX file of another element type than unsigned bytes.
    case unsupportedElementType(path: String, typeCode: UInt8)
    /// An IDX file with another number of dimensions than `kind` needs.
    case wrongDimensionCount(path: String, found: Int, kind: IDXKind)
    /// The file ends inside the header.
    case headerTruncated(path: String, size: Int)
    /// Fewer data bytes follow the header than it declares.
    case truncated(path: String, declared: String, expectedBytes: Int, availableBytes: Int)
    /// More data bytes follow the header than it declares: a corrupt or mislabeled file.
    case trailingBytes(path: String, declared: String, extraBytes: Int)
    /// The dimensions multiply past what fits in memory: a corrupt header.
    case implausibleSize(path: String, dimensions: [Int])
    /// The header declares no images or labels, or images of zero pixels.
    case emptySet(path: String, declared: String)
    /// The images and labels files hold different numbers of examples.
    case countMismatch(imagesPath: String, images: Int, labelsPath: String, labels: Int)
    /// The directory lacks the files of a split.
    case missingFiles(directory: String, split: MNISTSplit, missing: [String], directoryExists: Bool)
    /// A rank outside 0..<ranks, or fewer than one rank.
    case invalidPartition(rank: Int, ranks: Int)
    /// A batch size below one.
    case invalidBatchSize(Int)
    /// More ranks than examples: some rank's shard would be empty.
    case moreRanksThanExamples(examples: Int, ranks: Int)
    /// The smallest shard cannot fill one batch.
    case shardSmallerThanBatch(examples: Int, ranks: Int, smallestShard: Int, batchSize: Int)
    /// A batch index outside the epoch.
    case batchOutOfRange(index: Int, stepsPerEpoch: Int)
    /// The IDX writer was given a size and a buffer that disagree (a caller bug).
    case invalidWrite(path: String, problem: String)

    public var description: String {
        switch self {
        case let .notIDX(path, magic, kind):
            return "\(path) is not an IDX file (magic \(hex(magic, digits: 8))); expected \(hex(kind.magic, digits: 8)) "
                + "(unsigned-byte \(kind.noun) in \(kind.dimensionCount) dimension\(kind.dimensionCount == 1 ? "" : "s")); "
                + "check that the path names an MNIST-format \(kind.noun) file"
        case let .unsupportedElementType(path, typeCode):
            return "\(path) holds IDX elements of type \(hex(UInt32(typeCode), digits: 2)) (\(idxTypeName(typeCode))) "
                + "but only unsigned bytes (0x08) are supported; convert the data to uint8 as in MNIST"
        case let .wrongDimensionCount(path, found, kind):
            return "\(path) has \(found) dimension\(found == 1 ? "" : "s") but an IDX \(kind.noun) file has "
                + "\(kind.dimensionCount) \(kind.shapeText); check that the images and labels files are not swapped"
        case let .headerTruncated(path, size):
            return "\(path) is truncated: it ends after \(size) byte\(size == 1 ? "" : "s"), inside the IDX header; "
                + "download or copy it again (launch/fetch-mnist)"
        case let .truncated(path, declared, expectedBytes, availableBytes):
            return "\(path) is truncated: header declares \(declared) (\(expectedBytes) bytes) but only "
                + "\(availableBytes) bytes follow; download or copy it again (launch/fetch-mnist)"
        case let .trailingBytes(path, declared, extraBytes):
            return "\(path) has \(extraBytes) byte\(extraBytes == 1 ? "" : "s") after the data its header declares "
                + "(\(declared)): the header or the file is corrupt; download or copy it again (launch/fetch-mnist)"
        case let .implausibleSize(path, dimensions):
            return "\(path) declares dimensions \(dimensions.map(String.init).joined(separator: "x")), too large to be "
                + "real; the header is corrupt, download or copy the file again"
        case let .emptySet(path, declared):
            return "\(path) holds no examples: header declares \(declared); use a data set with at least one image"
        case let .countMismatch(imagesPath, images, labelsPath, labels):
            return "\(imagesPath) holds \(images) images but \(labelsPath) holds \(labels) labels; the two files "
                + "must come from the same split (train-* with train-*, t10k-* with t10k-*)"
        case let .missingFiles(directory, split, missing, directoryExists):
            let expected = split.fileNames.map { "\($0)(.gz)" }.joined(separator: " and ")
            let problem = directoryExists
                ? "\(missing.map { "\($0)(.gz)" }.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") missing"
                : "the directory does not exist (expected \(expected) in it)"
            return "no MNIST \(split.noun) set in \(directory): \(problem); run launch/fetch-mnist to download it, "
                + "or point --data or $MNIST_DIR at a directory holding \(expected)"
        case let .invalidPartition(rank, ranks) where ranks < 1:
            return "cannot split a data set over \(ranks) ranks (rank \(rank)); the number of ranks must be at least 1"
        case let .invalidPartition(rank, ranks):
            return "cannot take the shard of rank \(rank) of \(ranks) ranks; the rank must be in 0..<\(ranks)"
        case let .invalidBatchSize(size):
            return "batch size \(size) is invalid; use a --batch-size of at least 1"
        case let .moreRanksThanExamples(examples, ranks):
            return "more ranks (\(ranks)) than training images (\(examples)): every rank needs a batch of its own; "
                + "run at most \(examples) rank\(examples == 1 ? "" : "s"), or train on a larger data set"
        case let .shardSmallerThanBatch(examples, ranks, smallestShard, batchSize):
            return "the smallest of \(ranks) shards of the \(examples) examples holds \(smallestShard), fewer than the "
                + "per-rank batch size \(batchSize); use --batch-size \(max(smallestShard, 1)) or less, or fewer ranks"
        case let .batchOutOfRange(index, steps):
            return "batch \(index) is out of range: an epoch has \(steps) batches (0..<\(steps)); this is a bug in the caller"
        case let .invalidWrite(path, problem):
            return "cannot write IDX file \(path): \(problem); nothing was written (this is a bug in the caller)"
        }
    }
}

private func hex(_ value: UInt32, digits: Int) -> String {
    let text = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// The IDX format's element type codes.
private func idxTypeName(_ code: UInt8) -> String {
    switch code {
    case 0x08: return "unsigned byte"
    case 0x09: return "signed byte"
    case 0x0B: return "int16"
    case 0x0C: return "int32"
    case 0x0D: return "float32"
    case 0x0E: return "float64"
    default: return "unknown type"
    }
}
