import Backends
import Datasets
import Foundation
import Kernels
import TestSupport
import XCTest
@testable import Evaluation

/// MNIST from `$MNIST_DIR`, `./data/mnist` or this workspace's `../shared/mnist`; nil if none holds it.
let mnistDirectory: String? = {
    let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let candidates = [ProcessInfo.processInfo.environment["MNIST_DIR"], repository + "/data/mnist", repository + "/../shared/mnist"]
    return candidates.compactMap { $0 }.first { (try? MNISTFiles(directory: $0, split: .test)) != nil }
}()

/// A classifier trained briefly (300 steps of 64: about 96 % right), once per test process,
/// and the MNIST test set. The full classifier (10 epochs, over 99 %) is `gantry eval`'s.
final class TinyMNIST: @unchecked Sendable {
    static let shared: TinyMNIST? = mnistDirectory.map { try! TinyMNIST(directory: $0) }

    let classifier: Classifier
    let testSet: ImageShard
    let accuracy: Double

    init(directory: String) throws {
        let backend = try Backends.make(Backends.choose(), threads: 2)
        classifier = Classifier(backend: backend)
        try classifier.train(on: ImageShard(directory: directory, split: .train),
                             settings: ClassifierTrainingSettings(batchSize: 64, maxSteps: 300))
        testSet = try ImageShard(directory: directory, split: .test)
        accuracy = try classifier.accuracy(on: testSet)
    }
}

final class EvaluatorTests: XCTestCase {
    func mnist() throws -> TinyMNIST {
        guard let tiny = TinyMNIST.shared else {
            throw XCTSkip("no MNIST test set in $MNIST_DIR, ./data/mnist or ../shared/mnist (launch/fetch-mnist)")
        }
        return tiny
    }

    /// Real images, a held-out slice of the test set against the rest, score as real images do;
    /// one image repeated covers one class with a score of 1; uniform noise is far from both.
    func testKnownInputs() throws {
        let tiny = try mnist(), classifier = tiny.classifier
        XCTAssertGreaterThan(tiny.accuracy, 0.93, "300 steps should classify most test digits")
        let held = 2000, pixels = classifier.pixelCount
        let evaluator = try Evaluator(classifier: classifier, testSet: tiny.testSet, examples: held..<tiny.testSet.count)

        let real = try tiny.testSet.withSignedImages(0..<held) { try evaluator.evaluate(images: $0, count: held) }
        XCTAssertEqual(real.count, held)
        XCTAssertEqual(real.histogram.reduce(0, +), held)
        XCTAssertLessThan(real.frechetDistance, 6, "3.5 on AVX-512")
        XCTAssertGreaterThan(real.classifierScore, 7, "the full classifier's is 9.8")
        XCTAssertGreaterThan(real.classCoverage, 0.99)

        let oneImage = tiny.testSet.withSignedImages(0..<1) { one in (0..<held * pixels).map { one[$0 % pixels] } }
        let repeated = try oneImage.withUnsafeBufferPointer { try evaluator.evaluate(images: $0, count: held) }
        XCTAssertEqual(repeated.classCoverage, 0)
        XCTAssertEqual(repeated.classifierScore, 1, accuracy: 1e-9)
        XCTAssertEqual(repeated.histogram.filter { $0 != 0 }, [held])
        XCTAssertGreaterThan(repeated.frechetDistance, 20 * real.frechetDistance)

        let random = RandomStream(seed: 11)
        let noise = (0..<held * pixels).map { random.unitFloat(at: UInt64($0)) * 2 - 1 }
        let uniform = try noise.withUnsafeBufferPointer { try evaluator.evaluate(images: $0, count: held) }
        XCTAssertGreaterThan(uniform.frechetDistance, 20 * real.frechetDistance)
        XCTAssertLessThan(uniform.classCoverage, real.classCoverage)
        XCTAssertLessThan(uniform.classifierScore, real.classifierScore)
    }

    /// The classifier saved and loaded classifies exactly as before; a damaged tensor is
    /// refused with its CRC-32s.
    func testSaveAndLoad() throws {
        let tiny = try mnist()
        let path = makeTemporaryDirectory(self) + "/classifier.safetensors"
        let record = ClassifierRecord(dataSet: "mnist", settings: ClassifierTrainingSettings(batchSize: 64, maxSteps: 300),
                                      testAccuracy: tiny.accuracy, trainingSeconds: 1.5)
        try tiny.classifier.save(to: path, record: record)
        let (loaded, loadedRecord) = try Classifier.load(from: path, dataSet: .mnist, backend: tiny.classifier.backend)
        XCTAssertEqual(loadedRecord, record)
        let count = 500
        tiny.testSet.withSignedImages(0..<count) { images in
            XCTAssertEqual(loaded.predictions(images.baseAddress!, count: count),
                           tiny.classifier.predictions(images.baseAddress!, count: count))
        }

        assertThrows("classifier \(path) was trained on mnist, not fashion-mnist; "
                     + "rebuild it with gantry eval --train-classifier --data fashion-mnist") {
            _ = try Classifier.load(from: path, dataSet: .fashionMNIST, backend: tiny.classifier.backend)
        }
        // Flip the last byte: the last tensor's data (head.1.bias).
        var bytes = fileBytes(path)
        bytes[bytes.count - 1] ^= 0x40
        writeRaw(bytes, to: path)
        let error = thrownError { _ = try Classifier.load(from: path, dataSet: .mnist, backend: tiny.classifier.backend) }
        XCTAssertTrue("\(error!)".hasPrefix("classifier \(path) cannot be read (tensor head.1.bias has CRC-32 "), "\(error!)")
        XCTAssertTrue("\(error!)".hasSuffix("); rebuild it with gantry eval --train-classifier"), "\(error!)")
    }

    /// Training is a pure function of the seed and the data: on 1 thread and on 2, twice.
    func testTrainingIsDeterministic() throws {
        guard let directory = mnistDirectory else { throw XCTSkip("no MNIST") }
        let shard = try ImageShard(directory: directory, split: .test)
        var checksums: [UInt64] = []
        for threads in [1, 2, 2] {
            let classifier = Classifier(maxBatch: 64, backend: try Backends.make(Backends.choose(), threads: threads))
            try classifier.train(on: shard, settings: ClassifierTrainingSettings(batchSize: 32, seed: 5, maxSteps: 12))
            checksums.append(classifier.features.parameters.checksum() ^ classifier.head.parameters.checksum())
        }
        XCTAssertEqual(Set(checksums).count, 1, "\(checksums)")
    }
}
