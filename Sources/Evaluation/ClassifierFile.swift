import FileFormats
import Kernels
import NN

/// What a saved classifier records besides its parameters: what it was trained on, how, and
/// how well it classifies that data set's test split.
public struct ClassifierRecord: Sendable, Equatable {
    /// `EvaluationDataSet.rawValue` of the data it was trained on.
    public var dataSet: String
    public var settings: ClassifierTrainingSettings
    /// Share of the test split classified right, and the seconds training took.
    public var testAccuracy: Double
    public var trainingSeconds: Double

    public init(dataSet: String, settings: ClassifierTrainingSettings, testAccuracy: Double, trainingSeconds: Double) {
        self.dataSet = dataSet
        self.settings = settings
        self.testAccuracy = testAccuracy
        self.trainingSeconds = trainingSeconds
    }
}

/// A classifier in one safetensors file: each network's tensors (`features.0.kernel`, ...,
/// `head.1.bias`), their CRC-32s, and the `ClassifierRecord` and architecture version as
/// metadata. No optimizer state: a saved classifier is used, never trained further.
extension Classifier {
    static let versionKey = "gantry.classifier.version", dataSetKey = "gantry.classifier.data"
    static func checksumKey(_ tensor: String) -> String { "gantry.crc32." + tensor }

    /// Writes the parameters and `record` to `path` atomically.
    public func save(to path: String, record: ClassifierRecord) throws {
        var tensors: [Safetensors.Tensor] = []
        var metadata: [String: String] = [
            Classifier.versionKey: Classifier.version,
            Classifier.dataSetKey: record.dataSet,
            "gantry.classifier.image_size": "\(imageHeight)x\(imageWidth)",
            "gantry.classifier.test_accuracy": String(record.testAccuracy),
            "gantry.classifier.training_seconds": String(record.trainingSeconds),
            "gantry.classifier.epochs": String(record.settings.epochs),
            "gantry.classifier.steps": record.settings.maxSteps.map(String.init) ?? "all",
            "gantry.classifier.batch_size": String(record.settings.batchSize),
            "gantry.classifier.learning_rate": String(record.settings.learningRate),
            "gantry.classifier.seed": String(record.settings.seed),
        ]
        for (name, network) in namedNetworks {
            let values = UnsafeBufferPointer(network.parameters.values)
            for entry in network.parameters.entries {
                let tensor = Safetensors.Tensor(name: "\(name).\(entry.name)", shape: entry.shape,
                                                values: UnsafeBufferPointer(rebasing: values[entry.offset ..< entry.offset + entry.count]))
                metadata[Classifier.checksumKey(tensor.name)] = CRC32.hex(UnsafeRawBufferPointer(tensor.values))
                tensors.append(tensor)
            }
        }
        try Safetensors.write(path: path, tensors: tensors, metadata: metadata)
    }

    /// Reads the classifier saved at `path` for `dataSet`. Throws `EvaluationError` for a file
    /// that is not a classifier, of another architecture version or data set, or damaged.
    public static func load(from path: String, dataSet: EvaluationDataSet, maxBatch: Int = 256,
                            backend: Backend) throws -> (classifier: Classifier, record: ClassifierRecord) {
        let file: SafetensorsFile
        do {
            file = try SafetensorsFile(path: path)
        } catch let error as SafetensorsError {
            throw EvaluationError.unreadableClassifier(path: path, reason: error.description)
        }
        let metadata = file.metadata
        guard let version = metadata[versionKey] else { throw EvaluationError.notAClassifier(path: path, missing: versionKey) }
        guard version == Classifier.version else {
            throw EvaluationError.classifierVersion(path: path, stored: version, expected: Classifier.version)
        }
        guard let stored = metadata[dataSetKey] else { throw EvaluationError.notAClassifier(path: path, missing: dataSetKey) }
        guard stored == dataSet.rawValue else {
            throw EvaluationError.classifierDataSet(path: path, stored: stored, requested: dataSet.rawValue)
        }
        let size = (metadata["gantry.classifier.image_size"] ?? "").split(separator: "x").compactMap { Int($0) }
        guard size.count == 2, size.allSatisfy({ (1...4096).contains($0) }) else {
            throw EvaluationError.notAClassifier(path: path, missing: "gantry.classifier.image_size")
        }
        let classifier = Classifier(imageHeight: size[0], imageWidth: size[1], maxBatch: maxBatch, backend: backend)
        for (name, network) in classifier.namedNetworks {
            for entry in network.parameters.entries {
                let tensor = "\(name).\(entry.name)"
                let destination = UnsafeMutableBufferPointer(rebasing: network.parameters.values[entry.offset ..< entry.offset + entry.count])
                do {
                    try file.copyTensor(named: tensor, into: destination)
                } catch let error as SafetensorsError {
                    throw EvaluationError.unreadableClassifier(path: path, reason: error.description)
                }
                let computed = CRC32.hex(UnsafeRawBufferPointer(destination))
                guard let recorded = metadata[checksumKey(tensor)] else {
                    throw EvaluationError.notAClassifier(path: path, missing: checksumKey(tensor))
                }
                guard computed == recorded else {
                    throw EvaluationError.unreadableClassifier(
                        path: path, reason: "tensor \(tensor) has CRC-32 \(computed), the file records \(escapingLineBreaks(recorded))")
                }
            }
        }
        let number = { (key: String) in metadata["gantry.classifier." + key].flatMap(Double.init) ?? .nan }
        let settings = ClassifierTrainingSettings(
            epochs: Int(metadata["gantry.classifier.epochs"] ?? "") ?? 0,
            batchSize: Int(metadata["gantry.classifier.batch_size"] ?? "") ?? 0,
            learningRate: Float(number("learning_rate")),
            seed: UInt64(metadata["gantry.classifier.seed"] ?? "") ?? 0,
            maxSteps: Int(metadata["gantry.classifier.steps"] ?? ""))
        let record = ClassifierRecord(dataSet: stored, settings: settings, testAccuracy: number("test_accuracy"),
                                      trainingSeconds: number("training_seconds"))
        return (classifier, record)
    }
}
