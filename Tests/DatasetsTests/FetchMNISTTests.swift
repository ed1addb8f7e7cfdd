import Foundation
import TestSupport
import XCTest

/// launch/fetch-mnist never deletes a file it did not download: pointed at a copy of
/// shared/mnist (whose training images are reshuffled, so not the official md5) it names that
/// file, keeps it and succeeds; a damaged file is named, kept, and fails the run. The mirrors
/// are local (file://), so no test touches the network.
final class FetchMNISTTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private let names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                         "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    private let unreachable = "file:///nonexistent-gantry-mirror/"

    /// A writable copy of shared/mnist's four files.
    private func copyOfSharedMNIST() throws -> String {
        let directory = makeTemporaryDirectory(self)
        for name in names { writeRaw(fileBytes("\(MNISTTests.sharedMNIST)/\(name)"), to: "\(directory)/\(name)") }
        return directory
    }

    func testKeepsAReshuffledCopyAndSaysSo() throws {
        let directory = try copyOfSharedMNIST()
        let before = names.map { fileBytes("\(directory)/\($0)") }
        let result = try fetch(directory, mirrors: unreachable)
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.errors, "kept     \(directory)/train-images-idx3-ubyte.gz: md5 cca5a2480530c91fbcc4f0ac2eb7efb5 "
                       + "is not the official f68b3c2dcbeaaa9fbdd348bbdeb94873, but it is a whole IDX images file; left "
                       + "in place (move it away and run again for the official file)\n")
        XCTAssertEqual(names.map { fileBytes("\(directory)/\($0)") }, before, "a file was changed")
        XCTAssertEqual(directoryEntries(directory), names)
    }

    func testNamesAndKeepsADamagedFileAndFails() throws {
        let directory = try copyOfSharedMNIST()
        let cut = Array(fileBytes("\(directory)/train-labels-idx1-ubyte.gz").prefix(20_000))
        writeRaw(cut, to: "\(directory)/train-labels-idx1-ubyte.gz")
        let result = try fetch(directory, mirrors: "\(unreachable) file://\(MNISTTests.sharedMNIST)/")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.errors.contains("damaged  \(directory)/train-labels-idx1-ubyte.gz: md5 "), result.errors)
        XCTAssertTrue(result.errors.contains("and it is not a whole IDX labels file; left in place"), result.errors)
        XCTAssertEqual(fileBytes("\(directory)/train-labels-idx1-ubyte.gz"), cut, "the damaged file was changed")
        XCTAssertEqual(directoryEntries(directory), names)
    }

    func testDownloadsWhatIsMissingAndDiscardsABadDownload() throws {
        let directory = makeTemporaryDirectory(self)
        // shared/mnist is the mirror: its test files and training labels are the official ones,
        // its training images are not, so that download is discarded and reported missing.
        let result = try fetch(directory, mirrors: "\(unreachable) file://\(MNISTTests.sharedMNIST)/")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.errors.contains("missing  \(directory)/train-images-idx3-ubyte.gz: no mirror delivered "
                                             + "it with the right md5"), result.errors)
        XCTAssertEqual(directoryEntries(directory), names.filter { $0 != "train-images-idx3-ubyte.gz" },
                       "only verified files, no temporary ones")
        XCTAssertEqual(fileBytes("\(directory)/t10k-labels-idx1-ubyte.gz"),
                       fileBytes("\(MNISTTests.sharedMNIST)/t10k-labels-idx1-ubyte.gz"))
    }

    private func fetch(_ directory: String, mirrors: String) throws -> (status: Int32, errors: String) {
        let process = Process()
        process.executableURL = repository.appendingPathComponent("launch/fetch-mnist")
        process.arguments = [directory]
        var environment = ProcessInfo.processInfo.environment
        environment["MNIST_MIRRORS"] = mirrors
        process.environment = environment
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
