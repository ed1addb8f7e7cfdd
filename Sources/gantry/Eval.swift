import ArgumentParser
import Backends
import Datasets
import Evaluation
import FileFormats
import Foundation
import GAN
import Kernels

/// `gantry eval`: how good generated images are, measured against a data set's test split in
/// the features of a classifier Gantry trains once per data set and caches.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure generated images against the test set: FID, score and class coverage in Gantry's own classifier.",
        discussion: """
            The classifier is trained the first time a data set needs it (a minute or two) and cached in \
            $GANTRY_CACHE, else $XDG_CACHE_HOME/gantry, else ~/.cache/gantry; --train-classifier rebuilds it.

              gantry eval --checkpoint runs/a/checkpoints/step-00020000.safetensors
              gantry eval --samples samples.idx --data fashion-mnist
              gantry eval --train-classifier
            """)

    @Option(help: "A checkpoint written by gantry train: its generator makes --count images (default 10000).")
    var checkpoint: String?

    @Option(help: "A uint8 IDX images file (gantry sample --out FILE.idx writes one): its first --count images (default all).")
    var samples: String?

    @Option(help: "Number of images to measure.")
    var count: Int?

    @Option(help: "The data set to measure against: mnist or fashion-mnist.")
    var data: String = "mnist"

    @Option(name: .customLong("data-dir"),
            help: ArgumentHelp("Folder of the data set's IDX files (default: $MNIST_DIR or ./data/mnist for mnist, "
                + "/usr/share/datasets/fashion-mnist for fashion-mnist)."))
    var dataDirectory: String?

    @Flag(help: "Train the data set's classifier again and replace the cached one.")
    var trainClassifier = false

    @Option(help: "Seed of the generator's noise (with --checkpoint).")
    var seed: UInt64 = 1

    @Option(help: "Threads of the kernels (default: every core this process may use).")
    var threads: Int?

    @Option(help: instructionSetHelp)
    var isa: InstructionSet?

    /// Images generated from a checkpoint unless --count says otherwise: the usual FID sample size.
    static let defaultGeneratedCount = 10_000

    func validate() throws {
        if checkpoint != nil, samples != nil { throw ValidationError("pass --checkpoint or --samples, not both") }
        if checkpoint == nil, samples == nil, !trainClassifier {
            throw ValidationError("nothing to measure: pass --checkpoint FILE or --samples FILE.idx (or --train-classifier alone)")
        }
        if let count, count < 2 { throw ValidationError(EvaluationError.tooFewImages(count: count).description) }
        if let threads, threads <= 0 { throw ValidationError("--threads must be a positive integer, got \(threads)") }
        do { _ = try EvaluationDataSet(named: data) } catch { throw ValidationError(String(describing: error)) }
        if dataDirectory?.isEmpty == true { throw ValidationError("--data-dir must name a folder") }
        if let checkpoint, !FileManager.default.fileExists(atPath: checkpoint) {
            throw ValidationError("--checkpoint \(checkpoint): no such file; pass a file from a run's checkpoints/ folder")
        }
    }

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let backend = try Backends.make(try chooseInstructionSet(flag: isa),
                                        threads: threads ?? Backends.defaultThreads(localRanks: 1))
        do {
            let dataSet = try EvaluationDataSet(named: data)
            let directory = dataDirectory ?? dataSet.defaultDirectory(environment: environment)
            // The inputs first, so that a bad one is named before minutes of training a classifier.
            let testSet = try dataSet.load(.test, from: directory)
            let measured = try imagesToMeasure(rows: testSet.rows, columns: testSet.columns)
            let (classifier, record) = try classifier(for: dataSet, directory: directory, environment: environment, backend: backend)
            guard let (images, source) = measured else { return }

            let evaluator = try Evaluator(classifier: classifier, testSet: testSet)
            let report = try images.withUnsafeBufferPointer { try evaluator.evaluate(images: $0, count: $0.count / classifier.pixelCount) }
            print(EvalReport(report: report, source: source, dataSet: dataSet, testCount: testSet.count,
                             classifierAccuracy: record.testAccuracy).lines.joined(separator: "\n"))
        } catch {
            FileHandle.standardError.write(Data("gantry: \(error)\n".utf8))
            throw ExitCode(exitStatus(for: error))
        }
    }

    /// The cached classifier of `dataSet`, trained (and cached) first if there is none or
    /// --train-classifier asks; its training is reported on standard error.
    private func classifier(for dataSet: EvaluationDataSet, directory: String, environment: [String: String],
                            backend: Backend) throws -> (Classifier, ClassifierRecord) {
        try ClassifierCache.classifier(for: dataSet, directory: directory, environment: environment, rebuild: trainClassifier,
                                       backend: backend) { event in
            switch event {
            case let .training(path, rebuild, settings, images, directory):
                note(rebuild ? "training the \(dataSet.rawValue) classifier again (--train-classifier)"
                             : "no \(dataSet.rawValue) classifier in \(path) yet: training it once (a minute or two)")
                note("\(settings.epochs) epochs of \(images) images from \(directory), batch \(settings.batchSize), "
                     + "\(backend.threads) thread(s)")
            case let .progress(p):
                note("  step \(p.step)/\(p.steps), epoch \(p.epoch + 1): loss " + fixed(p.loss, 4)
                     + ", training accuracy " + fixed(100 * p.accuracy, 2) + " %")
            case let .saved(path, record, testImages):
                note("\(dataSet.rawValue) classifier: test accuracy " + fixed(100 * record.testAccuracy, 2)
                     + " % (\(testImages) images), trained in " + fixed(record.trainingSeconds, 1) + " s; saved to \(path)")
            }
        }
    }

    /// The images to measure (`rows x columns`, in [-1, 1]) and words for where they came from;
    /// nil for --train-classifier alone.
    private func imagesToMeasure(rows: Int, columns: Int) throws -> ([Float], String)? {
        if let samples {
            let file = try SampleImages(path: samples, count: count, rows: rows, columns: columns)
            return (file.pixels, "\(file.count) images of \(samples)")
        }
        guard let checkpoint else { return nil }
        let count = count ?? Eval.defaultGeneratedCount
        return (try generate(count: count, from: checkpoint, imageHeight: rows, imageWidth: columns),
                "\(count) images generated from \(checkpoint) (seed \(seed))")
    }

    /// `count` images from the checkpoint's generator, the noise of `--seed` as `gantry sample`
    /// draws it.
    private func generate(count: Int, from path: String, imageHeight: Int, imageWidth: Int) throws -> [Float] {
        let sampler = try Sampler(checkpoint: path)
        let configuration = sampler.configuration
        guard configuration.imageHeight == imageHeight, configuration.imageWidth == imageWidth else {
            throw EvaluationError.imageSize(path: path, rows: configuration.imageHeight, columns: configuration.imageWidth,
                                            expectedRows: imageHeight, expectedColumns: imageWidth)
        }
        return [Float](unsafeUninitializedCapacity: count * configuration.pixelCount) { buffer, initialized in
            sampler.generate(count: count, stream: RandomStream(seed: seed, 0x5A4D_504C), into: buffer.baseAddress!)
            initialized = count * configuration.pixelCount
        }
    }
}

/// Progress and notes on standard error, so that standard output holds the figures only.
private func note(_ text: String) {
    FileHandle.standardError.write(Data("gantry: \(text)\n".utf8))
}

/// An `EvaluationReport` in words and in key=value pairs.
struct EvalReport {
    let report: EvaluationReport
    let source: String
    let dataSet: EvaluationDataSet
    let testCount: Int
    let classifierAccuracy: Double

    var lines: [String] {
        let r = report
        return [
            "gantry eval: \(source), against the \(dataSet.rawValue) test set (\(testCount) images; classifier test accuracy "
                + fixed(100 * classifierAccuracy, 2) + " %)",
            "  FID      " + fixed(r.frechetDistance, 3, width: 10) + "  Fréchet distance in the classifier's 128 features (0: the test set's)",
            "  score    " + fixed(r.classifierScore, 3, width: 10) + "  exp E KL(p(y|x) || p(y)), 1 to 10",
            "  coverage " + fixed(r.classCoverage, 4, width: 10) + "  entropy of the predicted classes / ln 10, 0 to 1",
            "  classes  " + r.histogram.map(String.init).joined(separator: " ") + "  (images predicted as 0-9)",
            "eval data=\(dataSet.rawValue) count=\(r.count) fid=" + fixed(r.frechetDistance, 4) + " score=" + fixed(r.classifierScore, 4)
                + " coverage=" + fixed(r.classCoverage, 4) + " histogram=" + r.histogram.map(String.init).joined(separator: ","),
        ]
    }
}
