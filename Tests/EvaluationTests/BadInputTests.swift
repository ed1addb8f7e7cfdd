import Backends
import FileFormats
import TestSupport
import XCTest
@testable import Evaluation

/// Each bad input of `gantry eval`, one expected line.
final class BadInputTests: XCTestCase {
    /// IDX images bytes: magic 0x00000803, big-endian sizes, pixels.
    func idxImages(count: Int, rows: Int, columns: Int) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, 3]
        for dimension in [count, rows, columns] { bytes += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: dimension >> $0) } }
        return bytes + (0..<count * rows * columns).map { UInt8(truncatingIfNeeded: $0 &* 37) }
    }

    func testSampleFiles() throws {
        let directory = makeTemporaryDirectory(self)
        assertThrows("--samples \(directory)/none.idx: no such file; pass a uint8 IDX images file "
                     + "(gantry sample --out FILE.idx writes one)") {
            _ = try SampleImages(path: "\(directory)/none.idx", count: nil, rows: 28, columns: 28)
        }

        writeRaw(idxImages(count: 5, rows: 32, columns: 32), to: "\(directory)/large.idx")
        assertThrows("\(directory)/large.idx holds images of 32x32 but the classifier reads 28x28; "
                     + "pass images of 28x28, as the data set's") {
            _ = try SampleImages(path: "\(directory)/large.idx", count: nil, rows: 28, columns: 28)
        }

        writeRaw(idxImages(count: 5, rows: 28, columns: 28), to: "\(directory)/five.idx")
        assertThrows("--count 10000 is more than the 5 images in \(directory)/five.idx; "
                     + "pass --count 5 or less, or a file with more images") {
            _ = try SampleImages(path: "\(directory)/five.idx", count: 10000, rows: 28, columns: 28)
        }
        assertThrows("--count 1 is too few: the Fréchet distance needs a covariance, so at least 2 images; "
                     + "pass --count 2 or more (10000 gives figures comparable with others')") {
            _ = try SampleImages(path: "\(directory)/five.idx", count: 1, rows: 28, columns: 28)
        }
        let file = try SampleImages(path: "\(directory)/five.idx", count: nil, rows: 28, columns: 28)
        XCTAssertEqual(file.count, 5)
        XCTAssertEqual(file.pixels.count, 5 * 28 * 28)
        XCTAssertEqual(file.pixels[1], Float(37) / 127.5 - 1)
        XCTAssertEqual(try SampleImages(path: "\(directory)/five.idx", count: 3, rows: 28, columns: 28).pixels.count, 3 * 784)
    }

    func testDataSetNames() throws {
        assertThrows("--data cifar10: no such data set; use mnist or fashion-mnist") {
            _ = try EvaluationDataSet(named: "cifar10")
        }
        XCTAssertEqual(try EvaluationDataSet(named: "fashion-mnist"), .fashionMNIST)
        let directory = makeTemporaryDirectory(self)
        assertThrows("no fashion-mnist test set in \(directory)/none: the folder does not exist; install it with "
                     + "launch/setup --fashion-mnist, or pass --data-dir naming a folder that holds "
                     + "t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)") {
            _ = try EvaluationDataSet.fashionMNIST.load(.test, from: "\(directory)/none")
        }
        writeRaw([0, 0, 8, 1, 0, 0, 0, 0], to: "\(directory)/train-labels-idx1-ubyte")
        assertThrows("no mnist training set in \(directory): train-images-idx3-ubyte(.gz) is missing; download it with "
                     + "launch/fetch-mnist, or set $MNIST_DIR or pass --data-dir naming a folder that holds "
                     + "train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz)") {
            _ = try EvaluationDataSet.mnist.load(.train, from: directory)
        }
        XCTAssertEqual(EvaluationDataSet.mnist.defaultDirectory(environment: ["MNIST_DIR": "/m"]), "/m")
        XCTAssertEqual(EvaluationDataSet.fashionMNIST.defaultDirectory(environment: ["MNIST_DIR": "/m"]),
                       "/usr/share/datasets/fashion-mnist")
    }

    func testCachePaths() {
        XCTAssertEqual(ClassifierCache.path(for: .mnist, environment: ["GANTRY_CACHE": "/c/", "HOME": "/h"]),
                       "/c/classifier-mnist.safetensors")
        XCTAssertEqual(ClassifierCache.path(for: .fashionMNIST, environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]),
                       "/x/gantry/classifier-fashion-mnist.safetensors")
        XCTAssertEqual(ClassifierCache.path(for: .mnist, environment: ["GANTRY_CACHE": "", "HOME": "/h"]),
                       "/h/.cache/gantry/classifier-mnist.safetensors")
    }

    func testEvaluatorInputs() throws {
        let classifier = Classifier(maxBatch: 8, backend: try Backends.make(Backends.choose()))
        classifier.features.initializeParameters(seed: 1)
        classifier.head.initializeParameters(seed: 2)
        var images = [Float](repeating: 0.5, count: 4 * 784)
        let evaluator = try images.withUnsafeBufferPointer {
            try Evaluator(classifier: classifier, referenceImages: $0, count: 4)
        }
        assertThrows("cannot evaluate 3 images of 784 pixels from a buffer of 3136 values; "
                     + "pass count x pixels values (this is a bug in the caller)") {
            _ = try images.withUnsafeBufferPointer { try evaluator.evaluate(images: $0, count: 3) }
        }
        images[2 * 784 + 5] = .nan
        assertThrows("image 2 holds a NaN or an infinity (the generator diverged); evaluate an earlier checkpoint") {
            _ = try images.withUnsafeBufferPointer { try evaluator.evaluate(images: $0, count: 4) }
        }
    }

    func testClassifierFiles() throws {
        let directory = makeTemporaryDirectory(self), backend = try Backends.make(Backends.choose())
        let classifier = Classifier(backend: backend)
        let record = ClassifierRecord(dataSet: "mnist", settings: ClassifierTrainingSettings(), testAccuracy: 0.99,
                                      trainingSeconds: 60)
        try classifier.save(to: "\(directory)/good.safetensors", record: record)

        try Safetensors.write(path: "\(directory)/other.safetensors", tensors: [(name: "x", shape: [1], values: [1])])
        assertThrows("\(directory)/other.safetensors has no gantry.classifier.version metadata: it is not a classifier "
                     + "saved by gantry eval; remove it, or rebuild it with gantry eval --train-classifier") {
            _ = try Classifier.load(from: "\(directory)/other.safetensors", dataSet: .mnist, backend: backend)
        }
        try Safetensors.write(path: "\(directory)/old.safetensors", tensors: [(name: "x", shape: [1], values: [1])],
                              metadata: ["gantry.classifier.version": "0"])
        assertThrows("classifier \(directory)/old.safetensors has architecture version 0, this gantry uses 1; "
                     + "rebuild it with gantry eval --train-classifier") {
            _ = try Classifier.load(from: "\(directory)/old.safetensors", dataSet: .mnist, backend: backend)
        }
        writeRaw([1, 2, 3], to: "\(directory)/short.safetensors")
        assertThrows("classifier \(directory)/short.safetensors cannot be read (checkpoint \(directory)/short.safetensors is "
                     + "too short to be a safetensors file (3 bytes; the 8-byte header length alone is missing); it was cut "
                     + "off or is not a checkpoint, use another one); rebuild it with gantry eval --train-classifier") {
            _ = try Classifier.load(from: "\(directory)/short.safetensors", dataSet: .mnist, backend: backend)
        }
        XCTAssertEqual(try Classifier.load(from: "\(directory)/good.safetensors", dataSet: .mnist, backend: backend).record, record)
    }
}
