#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The two splits of MNIST and of data sets distributed like it (Fashion-MNIST uses the same
/// file names).
public enum MNISTSplit: String, Sendable, CaseIterable {
    /// 60,000 examples in MNIST: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`.
    case train
    /// 10,000 examples in MNIST: `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`.
    case test

    /// The uncompressed file names, images first; each may also exist with `.gz` appended.
    public var fileNames: [String] {
        let prefix = self == .train ? "train" : "t10k"
        return ["\(prefix)-images-idx3-ubyte", "\(prefix)-labels-idx1-ubyte"]
    }

    var noun: String { self == .train ? "training" : "test" }
}

/// The images and labels files of one split in a data directory.
public struct MNISTFiles: Sendable, Equatable {
    public let images: String
    public let labels: String

    /// Finds the split's files in `directory`. Each file is taken uncompressed if present
    /// (no decompression cost), else with `.gz`; throws `DatasetError.missingFiles` naming the
    /// directory, the expected names and how to get them.
    public init(directory: String, split: MNISTSplit) throws {
        let base = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var found: [String] = []
        var missing: [String] = []
        for name in split.fileNames {
            if let path = ["\(base)/\(name)", "\(base)/\(name).gz"].first(where: isFile) {
                found.append(path)
            } else {
                missing.append(name)
            }
        }
        guard missing.isEmpty else {
            throw DatasetError.missingFiles(directory: directory, split: split, missing: missing,
                                            directoryExists: isDirectory(directory))
        }
        images = found[0]
        labels = found[1]
    }
}

/// The data directory to read: the `--data` flag if given, else `$MNIST_DIR`, else
/// `./data/mnist` (where `launch/fetch-mnist` puts the files). Empty values count as unset.
public func resolveDataDirectory(explicit: String?, environment: [String: String]) -> String {
    if let explicit, !explicit.isEmpty { return explicit }
    if let variable = environment["MNIST_DIR"], !variable.isEmpty { return variable }
    return "./data/mnist"
}

extension ImageShard {
    /// Loads rank `rank`'s shard of a split from an MNIST-format directory (see `MNISTFiles`).
    /// The default rank 0 of 1 loads the whole split, e.g. the test split for evaluation.
    public init(directory: String, split: MNISTSplit = .train, rank: Int = 0, ranks: Int = 1) throws {
        let files = try MNISTFiles(directory: directory, split: split)
        try self.init(imagesPath: files.images, labelsPath: files.labels, rank: rank, ranks: ranks)
    }
}

private func fileType(_ path: String) -> UInt32? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return UInt32(info.st_mode) & 0o170000
}

private func isFile(_ path: String) -> Bool { fileType(path) == 0o100000 }
private func isDirectory(_ path: String) -> Bool { fileType(path) == 0o040000 }
