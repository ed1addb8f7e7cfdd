import TestSupport
import XCTest
@testable import Datasets

final class MNISTTests: XCTestCase {
    /// shared/mnist beside the repository: Tests/DatasetsTests/ -> repo -> repo/../shared/mnist.
    static let sharedMNIST: String = {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/../shared/mnist"
    }()

    /// The shared MNIST directory, or a test failure saying where it was looked for.
    func mnistDirectory() throws -> String {
        let directory = MNISTTests.sharedMNIST
        guard FileManager.default.fileExists(atPath: "\(directory)/train-images-idx3-ubyte.gz") else {
            XCTFail("the MNIST files are not at \(directory) (shared/mnist beside the repository); "
                    + "these tests need the real data set there")
            throw CocoaError(.fileNoSuchFile)
        }
        return directory
    }

    func testFullTrainingSetAndItsTwoShards() throws {
        let directory = try mnistDirectory()
        let whole = try ImageShard(directory: directory)
        XCTAssertEqual(whole.count, 60_000)
        XCTAssertEqual(whole.totalCount, 60_000)
        XCTAssertEqual(whole.rows, 28)
        XCTAssertEqual(whole.columns, 28)
        XCTAssertEqual(whole.pixels.count, 60_000 * 784, "one byte per pixel")
        XCTAssertEqual(whole.labels.count, 60_000)
        // Plain pointer loops: the checks run over 47 million values in a debug build.
        var (low, high, background) = (UInt8.max, UInt8.min, 0)
        whole.pixels.withUnsafeBufferPointer { pixels in
            for index in 0..<pixels.count {
                let value = pixels[index]
                low = min(low, value)
                high = max(high, value)
                if value == 0 { background += 1 }
            }
        }
        XCTAssertEqual(low, 0)
        XCTAssertEqual(high, 255)
        // MNIST digits are white on black: most pixels are background.
        XCTAssertGreaterThan(background, whole.pixels.count / 2)
        XCTAssertEqual(whole.labels.max(), 9)

        let first = try ImageShard(directory: directory, split: .train, rank: 0, ranks: 2)
        let second = try ImageShard(directory: directory, split: .train, rank: 1, ranks: 2)
        XCTAssertEqual(first.globalRange, 0..<30_000)
        XCTAssertEqual(second.globalRange, 30_000..<60_000)
        XCTAssertEqual(first.pixels.count, 30_000 * 784, "a shard holds only its own images")
        XCTAssertEqual(second.pixels.count, 30_000 * 784)
        whole.pixels.withUnsafeBytes { all in
            first.pixels.withUnsafeBytes { XCTAssertEqual(memcmp(all.baseAddress!, $0.baseAddress!, $0.count), 0, "shard 0 differs") }
            second.pixels.withUnsafeBytes {
                XCTAssertEqual(memcmp(all.baseAddress! + all.count - $0.count, $0.baseAddress!, $0.count), 0, "shard 1 differs")
            }
        }
        XCTAssertEqual(first.labels + second.labels, whole.labels)
    }

    /// Batches of the real training set on 2 ranks: the bytes each rank keeps, converted a
    /// batch at a time, give exactly x / 127.5 - 1 of the file's bytes.
    func testRealBatchesMatchTheFile() throws {
        let directory = try mnistDirectory()
        let files = try MNISTFiles(directory: directory, split: .train)
        let (_, file) = try IDX.read(path: files.images, kind: .images)
        let width = 784
        var batch = [Float](repeating: .nan, count: 64 * width)
        for rank in 0..<2 {
            let batcher = try EpochBatcher(shard: try ImageShard(directory: directory, rank: rank, ranks: 2),
                                           batchSize: 64, seed: 3)
            for index in [0, 1, batcher.stepsPerEpoch - 1] {
                try batch.withUnsafeMutableBufferPointer { try batcher.copyBatch(index, into: $0.baseAddress!) }
                for (slot, example) in try batcher.indices(ofBatch: index).enumerated() {
                    let global = batcher.shard.globalRange.lowerBound + example
                    let expected = file[(global * width)..<((global + 1) * width)].map { (Float($0) / 127.5 - 1).bitPattern }
                    XCTAssertEqual(batch[(slot * width)..<((slot + 1) * width)].map(\.bitPattern), expected,
                                   "image \(global), rank \(rank)")
                }
            }
        }
    }

    func testTestSplit() throws {
        let test = try ImageShard(directory: try mnistDirectory(), split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(test.pixelsPerImage, 784)
        XCTAssertTrue(test.imagesPath.hasSuffix("/t10k-images-idx3-ubyte.gz"))
        // The official t10k set starts with a 7, a 2 and a 1.
        XCTAssertEqual(Array(test.labels.prefix(3)), [7, 2, 1])
    }

    func testLocatingFiles() throws {
        let directory = makeTemporaryDirectory(self)
        assertThrows("no MNIST training set in \(directory): train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz) "
                     + "are missing; run launch/fetch-mnist to download it, or point --data or $MNIST_DIR at a directory "
                     + "holding train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz)") {
            _ = try MNISTFiles(directory: directory, split: .train)
        }
        assertThrows("no MNIST test set in \(directory)/nowhere: the directory does not exist (expected "
                     + "t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz) in it); run launch/fetch-mnist to "
                     + "download it, or point --data or $MNIST_DIR at a directory holding t10k-images-idx3-ubyte(.gz) "
                     + "and t10k-labels-idx1-ubyte(.gz)") {
            _ = try ImageShard(directory: "\(directory)/nowhere", split: .test)
        }
        writeRaw([1], to: "\(directory)/train-images-idx3-ubyte.gz")
        assertThrows("no MNIST training set in \(directory): train-labels-idx1-ubyte(.gz) is missing; run "
                     + "launch/fetch-mnist to download it, or point --data or $MNIST_DIR at a directory holding "
                     + "train-images-idx3-ubyte(.gz) and train-labels-idx1-ubyte(.gz)") {
            _ = try MNISTFiles(directory: directory, split: .train)
        }
        writeRaw([1], to: "\(directory)/train-labels-idx1-ubyte.gz")
        writeRaw([1], to: "\(directory)/train-labels-idx1-ubyte")
        let files = try MNISTFiles(directory: directory + "/", split: .train)
        XCTAssertEqual(files.images, "\(directory)/train-images-idx3-ubyte.gz")
        XCTAssertEqual(files.labels, "\(directory)/train-labels-idx1-ubyte", "the uncompressed file is preferred when both exist")
    }

    func testDataDirectoryResolution() {
        XCTAssertEqual(resolveDataDirectory(explicit: "/data/x", environment: ["MNIST_DIR": "/env"]), "/data/x")
        XCTAssertEqual(resolveDataDirectory(explicit: nil, environment: ["MNIST_DIR": "/env"]), "/env")
        XCTAssertEqual(resolveDataDirectory(explicit: "", environment: ["MNIST_DIR": "/env"]), "/env")
        XCTAssertEqual(resolveDataDirectory(explicit: nil, environment: ["MNIST_DIR": ""]), "./data/mnist")
        XCTAssertEqual(resolveDataDirectory(explicit: nil, environment: [:]), "./data/mnist")
    }
}
