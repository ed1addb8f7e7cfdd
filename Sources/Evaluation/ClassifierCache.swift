import Datasets
import Foundation
import Kernels

/// Each data set's trained classifier, kept in one file and trained the first time it is needed.
public enum ClassifierCache {
    /// What happens while `classifier(for:...)` trains a classifier, for the caller to report
    /// (nothing here prints).
    public enum Event: Sendable {
        /// Training begins: there was no file at `path`, or a rebuild was asked for.
        case training(path: String, rebuild: Bool, settings: ClassifierTrainingSettings, images: Int, directory: String)
        case progress(ClassifierTrainingProgress)
        /// The classifier is trained, measured on the test split and saved to `path`.
        case saved(path: String, record: ClassifierRecord, testImages: Int)
    }

    /// Where `dataSet`'s classifier is kept: `$GANTRY_CACHE/classifier-NAME.safetensors`, else
    /// under `$XDG_CACHE_HOME/gantry`, else under `$HOME/.cache/gantry` (empty values count as
    /// unset; `./.cache/gantry` without a home).
    public static func path(for dataSet: EvaluationDataSet, environment: [String: String]) -> String {
        func set(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let directory = set("GANTRY_CACHE") ?? set("XDG_CACHE_HOME").map { "\($0)/gantry" }
            ?? "\(set("HOME") ?? ".")/.cache/gantry"
        return "\(directory.hasSuffix("/") ? String(directory.dropLast()) : directory)/classifier-\(dataSet.rawValue).safetensors"
    }

    /// The classifier of `dataSet` saved at `path(for:environment:)`, or, when there is none
    /// or `rebuild`, one trained on the training split in `directory` with `settings`, measured
    /// on its test split and saved there (the folder is created). Throws `EvaluationError` for
    /// a file that is not a usable classifier, and the data and file errors of reading and saving.
    public static func classifier(for dataSet: EvaluationDataSet, directory: String, environment: [String: String],
                                  rebuild: Bool = false, settings: ClassifierTrainingSettings = .init(), backend: Backend,
                                  events: (Event) -> Void = { _ in }) throws -> (classifier: Classifier, record: ClassifierRecord) {
        let path = path(for: dataSet, environment: environment)
        if !rebuild, FileManager.default.fileExists(atPath: path) {
            return try Classifier.load(from: path, dataSet: dataSet, backend: backend)
        }
        let trainingSet = try dataSet.load(.train, from: directory)
        let testSet = try dataSet.load(.test, from: directory)
        events(.training(path: path, rebuild: rebuild, settings: settings, images: trainingSet.count, directory: directory))
        let start = Date()
        let classifier = Classifier(imageHeight: trainingSet.rows, imageWidth: trainingSet.columns, backend: backend)
        try classifier.train(on: trainingSet, settings: settings, reportEvery: 500) { events(.progress($0)) }
        let seconds = Date().timeIntervalSince(start)
        let record = ClassifierRecord(dataSet: dataSet.rawValue, settings: settings,
                                      testAccuracy: try classifier.accuracy(on: testSet), trainingSeconds: seconds)
        // If the folder cannot be made, the writer's error names it.
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        try classifier.save(to: path, record: record)
        events(.saved(path: path, record: record, testImages: testSet.count))
        return (classifier, record)
    }
}
