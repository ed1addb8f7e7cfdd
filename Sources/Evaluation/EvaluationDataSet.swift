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
}

/// Where a data set's trained classifier is kept: `$GANTRY_CACHE/classifier-NAME.safetensors`,
/// else under `$XDG_CACHE_HOME/gantry`, else under `$HOME/.cache/gantry` (empty values count
/// as unset; `./.cache/gantry` without a home).
public func classifierCachePath(for dataSet: EvaluationDataSet, environment: [String: String]) -> String {
    func set(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
    let directory = set("GANTRY_CACHE") ?? set("XDG_CACHE_HOME").map { "\($0)/gantry" }
        ?? "\(set("HOME") ?? ".")/.cache/gantry"
    return "\(directory.hasSuffix("/") ? String(directory.dropLast()) : directory)/classifier-\(dataSet.rawValue).safetensors"
}
