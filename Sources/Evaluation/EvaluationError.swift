import Datasets
import FileFormats

/// Why images could not be evaluated, or a classifier trained or loaded.
///
/// `description` is one line naming the problem and the fix; the CLI prints it as is. Names
/// read from files (a data set's name, a version) print with line breaks escaped.
public enum EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `--data` names no data set Gantry has a classifier for.
    case unknownDataSet(name: String)
    /// The data set's folder lacks the files of a split.
    case missingData(dataSet: EvaluationDataSet, directory: String, split: MNISTSplit, missing: [String], directoryExists: Bool)
    /// `--samples` names no file.
    case missingSamples(path: String)
    /// Images of another size than the classifier's (and the test set's).
    case imageSize(path: String, rows: Int, columns: Int, expectedRows: Int, expectedColumns: Int)
    /// More images asked for than the file holds.
    case countExceedsFile(path: String, requested: Int, available: Int)
    /// Fewer than two images: no covariance, so no Fréchet distance.
    case tooFewImages(count: Int)
    /// A labels file with a class outside 0-9.
    case labelOutOfRange(path: String, index: Int, label: Int)
    /// An image holding a NaN or an infinity (a diverged generator's).
    case nonFiniteImage(index: Int)
    /// The buffer handed to `Evaluator.evaluate` does not hold `count` images (a caller bug).
    case imageBufferSize(count: Int, pixelsPerImage: Int, given: Int)
    /// A safetensors file that is not a saved classifier (another program's, or a checkpoint).
    case notAClassifier(path: String, missing: String)
    /// A classifier saved by another version of the architecture.
    case classifierVersion(path: String, stored: String, expected: String)
    /// A classifier trained on another data set than the one asked for.
    case classifierDataSet(path: String, stored: String, requested: String)
    /// A classifier file that cannot be read: `reason` is the reader's own one-line message.
    case unreadableClassifier(path: String, reason: String)
    /// LAPACK's symmetric eigensolver failed (`info` is its status).
    case eigensolverFailed(dimension: Int, info: Int)

    public var description: String {
        let rebuild = "rebuild it with gantry eval --train-classifier"
        switch self {
        case let .unknownDataSet(name):
            return "--data \(escapingLineBreaks(name)): no such data set; use "
                + EvaluationDataSet.allCases.map(\.rawValue).joined(separator: " or ")
        case let .missingData(dataSet, directory, split, missing, directoryExists):
            let expected = split.fileNames.map { "\($0)(.gz)" }.joined(separator: " and ")
            let problem = directoryExists
                ? "\(missing.map { "\($0)(.gz)" }.joined(separator: " and ")) \(missing.count == 1 ? "is" : "are") missing"
                : "the folder does not exist"
            return "no \(dataSet.rawValue) \(split == .train ? "training" : "test") set in \(directory): \(problem); "
                + "\(dataSet.installHint) naming a folder that holds \(expected)"
        case let .missingSamples(path):
            return "--samples \(path): no such file; pass a uint8 IDX images file (gantry sample --out FILE.idx writes one)"
        case let .imageSize(path, rows, columns, expectedRows, expectedColumns):
            return "\(path) holds images of \(rows)x\(columns) but the classifier reads \(expectedRows)x\(expectedColumns); "
                + "pass images of \(expectedRows)x\(expectedColumns), as the data set's"
        case let .countExceedsFile(path, requested, available):
            return "--count \(requested) is more than the \(available) image\(available == 1 ? "" : "s") in \(path); "
                + "pass --count \(available) or less, or a file with more images"
        case let .tooFewImages(count):
            return "--count \(count) is too few: the Fréchet distance needs a covariance, so at least 2 images; "
                + "pass --count 2 or more (10000 gives figures comparable with others')"
        case let .labelOutOfRange(path, index, label):
            return "\(path): label \(index) is \(label), not a class 0-9; use the labels file of a 10-class data set"
        case let .nonFiniteImage(index):
            return "image \(index) holds a NaN or an infinity (the generator diverged); evaluate an earlier checkpoint"
        case let .imageBufferSize(count, pixelsPerImage, given):
            return "cannot evaluate \(count) images of \(pixelsPerImage) pixels from a buffer of \(given) values; "
                + "pass count x pixels values (this is a bug in the caller)"
        case let .notAClassifier(path, missing):
            return "\(path) has no \(missing) metadata: it is not a classifier saved by gantry eval; "
                + "remove it, or \(rebuild)"
        case let .classifierVersion(path, stored, expected):
            return "classifier \(path) has architecture version \(escapingLineBreaks(stored)), this gantry uses \(expected); "
                + rebuild
        case let .classifierDataSet(path, stored, requested):
            return "classifier \(path) was trained on \(escapingLineBreaks(stored)), not \(requested); \(rebuild) --data \(requested)"
        case let .unreadableClassifier(path, reason):
            return "classifier \(path) cannot be read (\(reason)); \(rebuild)"
        case let .eigensolverFailed(dimension, info):
            return "the eigensolver (LAPACK dsyev) failed on a \(dimension)x\(dimension) covariance (info \(info)); "
                + "the features are degenerate, check the images"
        }
    }
}
