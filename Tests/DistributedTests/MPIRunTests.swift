import XCTest
import Foundation

/// Runs the multi-rank checks (`Tests/MPI`, the `gantry-mpi-tests` executable) under mpirun.
/// `swift test` builds every product, so the executable sits next to the test bundle.
final class MPIRunTests: XCTestCase {
    func testChecksPassOnTwoRanks() throws {
        let binary = try Self.executable("gantry-mpi-tests")
        let mpirun = try Self.executable("mpirun", searchingPath: true)
        // mpirun's slots are physical cores, which may be fewer than 2 even where nproc says 2
        // (hyperthreads); --oversubscribe lets 2 ranks run anyway, unbound when they share a core.
        let run = try Self.run(mpirun, ["-np", "2", "--oversubscribe", binary])
        let closing = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertEqual(run.status, 0, run.transcript)
        XCTAssertNotNil(closing.wholeMatch(of: /[1-9][0-9]* passed, 0 failed/), "closing line '\(closing)'\n\(run.transcript)")
    }

    /// Alone, the checks run on one rank: "at least 2 ranks" fails and the exit status says so.
    func testOneRankFailsTheSizeCheck() throws {
        let run = try Self.run(try Self.executable("gantry-mpi-tests"), ["world has at least 2 ranks"])
        let closing = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        XCTAssertNotEqual(run.status, 0, run.transcript)
        XCTAssertEqual(closing, "0 passed, 1 failed", run.transcript)
        XCTAssertTrue(run.stdout.contains("FAIL world has at least 2 ranks"), run.transcript)
    }

    // MARK: - Helpers

    /// The directories a built executable may be in: the test bundle's own directory
    /// (on Linux the `.xctest` bundle is an executable in `.build/<triple>/<config>/`),
    /// and the directory holding the bundle (macOS: `<config>/X.xctest/Contents/MacOS/X`).
    private static func buildDirectories() -> [URL] {
        var bundles = [Bundle(for: MPIRunTests.self).bundleURL, Bundle.main.bundleURL]
        if let first = CommandLine.arguments.first { bundles.append(URL(fileURLWithPath: first)) }
        var directories: [URL] = []
        for url in bundles {
            let resolved = url.resolvingSymlinksInPath()
            for directory in [resolved.deletingLastPathComponent(), resolved]
            where !directories.contains(directory) {
                directories.append(directory)
            }
        }
        return directories
    }

    private static func executable(_ name: String, searchingPath: Bool = false) throws -> String {
        var directories = buildDirectories()
        if searchingPath {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            directories = path.split(separator: ":").map { URL(fileURLWithPath: String($0)) }
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        let hint = searchingPath ? "install Open MPI (launch/setup)" : "build it with `swift build` (`swift test` does)"
        throw Failure("\(name) not found in \(directories.map(\.path)); \(hint)")
    }

    private struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
        var transcript: String { "--- stdout\n\(stdout)--- stderr\n\(stderr)" }
    }

    private struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Runs `executable` with output to files (a pipe could fill and stall the ranks) and
    /// ends it after `timeout` seconds: a rank stuck in a collective must fail the test, not hang it.
    private static func run(_ executable: String, _ arguments: [String], timeout: TimeInterval = 300) throws -> Run {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gantry-mpi-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("stdout"), err = directory.appendingPathComponent("stderr")
        try Data().write(to: out)
        try Data().write(to: err)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if getuid() == 0 {
            environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        }
        process.environment = environment
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        try process.run()

        let deadline = Date(timeIntervalSinceNow: timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        let timedOut = process.isRunning
        if timedOut { process.terminate() }
        process.waitUntilExit()

        let run = Run(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
        if timedOut {
            throw Failure("\(executable) \(arguments.joined(separator: " ")) ran past \(Int(timeout)) s\n\(run.transcript)")
        }
        return run
    }
}
