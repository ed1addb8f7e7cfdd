import Datasets

/// A data set Gantry can measure generated images against: its own classifier, cached per
/// data set, and its test split as the reference.
public enum EvaluationDataSet: String, CaseIterable, Sendable {
    case mnist
    case fashionMNIST = "fashion-mnist"

    /// The data set called `name` (`mnist` or `fashion-mnist`); throws `EvaluationError.unknownDataSet`.
    public init(named name: String) throws {
        guard let dataSet = EvaluationDataSet(rawValue: name) else { throw EvaluationError.unknownDataSet(name: name) }
        self = dataSet
    }

    /// Where the data set's IDX files are unless a folder is given: MNIST's as `gantry train`
    /// finds them (`$MNIST_DIR`, else `./data/mnist`), Fashion-MNIST's where Debian's
    /// `dataset-fashion-mnist` installs them (`launch/setup --fashion-mnist`).
    public func defaultDirectory(environment: [String: String]) -> String {
        switch self {
        case .mnist: return resolveDataDirectory(explicit: nil, environment: environment)
        case .fashionMNIST: return "/usr/share/datasets/fashion-mnist"
        }
    }

    /// The split's images and labels from `directory`. A folder without them throws
    /// `EvaluationError.missingData`, which says how to get this data set.
    public func load(_ split: MNISTSplit, from directory: String) throws -> ImageShard {
        do {
            return try ImageShard(directory: directory, split: split)
        } catch let DatasetError.missingFiles(_, _, missing, directoryExists) {
            throw EvaluationError.missingData(dataSet: self, directory: directory, split: split, missing: missing,
                                              directoryExists: directoryExists)
        }
    }

    /// How to put this data set on disk, for error messages.
    var installHint: String {
        switch self {
        case .mnist: return "download it with launch/fetch-mnist, or set $MNIST_DIR or pass --data-dir"
        case .fashionMNIST: return "install it with launch/setup --fashion-mnist, or pass --data-dir"
        }
    }
}
