import XCTest
import Foundation

/// launch/train's arguments, through its dry run (GANTRY_DRY_RUN=1 prints the mpirun line).
final class LaunchTrainTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testDefaultsToOneRankPerCore() throws {
        let cores = try defaultRanks()
        XCTAssertGreaterThan(cores, 0)
        XCTAssertLessThanOrEqual(cores, ProcessInfo.processInfo.processorCount)
    }

    func testPassesTrainOptionsThrough() throws {
        let line = try dryRun(["--epochs", "3", "-np", "1", "--out", "runs/a b", "--", "-np", "9"])
        XCTAssertTrue(line.hasPrefix("mpirun -np 1 --bind-to core "), line)
        XCTAssertTrue(line.hasSuffix("gantry train --progress plain --epochs 3 --out runs/a\\ b -np 9"), line)
    }

    /// Its output is not a terminal here, so the progress is plain, unless the flag is given.
    func testChoosesTheProgressFromItsOwnOutput() throws {
        XCTAssertTrue(try dryRun(["-np", "1"]).hasSuffix("gantry train --progress plain"))
        XCTAssertTrue(try dryRun(["-np", "1", "--progress", "none"]).hasSuffix("gantry train --progress none"))
        XCTAssertTrue(try dryRun(["-np", "1", "--progress=live"]).hasSuffix("gantry train --progress=live"))
    }

    func testOversubscribesOnlyPastTheCores() throws {
        let cores = try defaultRanks()
        XCTAssertTrue(try dryRun(["-np", "\(cores)"]).hasPrefix("mpirun -np \(cores) --bind-to core "))
        let line = try dryRun(["-np", "\(cores + 1)"])
        XCTAssertTrue(line.hasPrefix("mpirun -np \(cores + 1) --oversubscribe --bind-to none "), line)
    }

    func testHostfileSlotsSetTheRanks() throws {
        let hostfile = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-hosts-\(UUID().uuidString)")
        try "# two hosts\nnode01 slots=4  # four\n\nnode02 slots=2\nnode03\n".write(to: hostfile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let line = try dryRun(["--hostfile", hostfile.path])
        XCTAssertTrue(line.contains("mpirun -np 7 --hostfile \(hostfile.path) --bind-to core "), line)
        let more = try dryRun(["--hostfile", hostfile.path, "-np", "8"])
        XCTAssertTrue(more.contains("--oversubscribe --bind-to none "), more)
    }

    /// One slot per host (fake-hosts' hostfile): no binding, or ranks of hosts that share a
    /// machine would all be bound to its core 0.
    func testOneSlotPerHostIsNotBound() throws {
        let hostfile = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-hosts-\(UUID().uuidString)")
        try "10.213.0.1 slots=1\n10.213.0.2 slots=1\n".write(to: hostfile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let line = try dryRun(["--hostfile", hostfile.path])
        XCTAssertTrue(line.contains("mpirun -np 2 --hostfile \(hostfile.path) --bind-to none "), line)
    }

    func testRejectsBadRankCounts() throws {
        XCTAssertEqual(try run(["-np", "0"]).status, 2)
        XCTAssertEqual(try run(["-np"]).status, 2)
        XCTAssertEqual(try run(["--hostfile", "/nonexistent/hosts"]).status, 2)
    }

    /// The ranks launch/train starts by default on this host: its count of cores.
    private func defaultRanks() throws -> Int {
        let line = try dryRun([])
        XCTAssertTrue(line.hasSuffix(" --bind-to core \(repository.path)/.build/release/gantry train --progress plain"), line)
        let match = try XCTUnwrap(line.firstMatch(of: #/^mpirun -np ([0-9]+) /#), line)
        return try XCTUnwrap(Int(match.1))
    }

    /// The mpirun line, without the root variables launch/train adds when uid is 0.
    private func dryRun(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        XCTAssertEqual(result.status, 0, result.output)
        let line = result.output.trimmingCharacters(in: .newlines)
        let rootPrefix = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
        XCTAssertEqual(line.hasPrefix(rootPrefix), getuid() == 0, line)
        return line.hasPrefix(rootPrefix) ? String(line.dropFirst(rootPrefix.count)) : line
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = repository.appendingPathComponent("launch/train")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["GANTRY_DRY_RUN"] = "1"
        environment["OMPI_MCA_orte_default_hostfile"] = nil
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}
