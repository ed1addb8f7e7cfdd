import XCTest
import Foundation

/// launch/scale's sweep, through its dry run (GANTRY_DRY_RUN=1 prints one mpirun line per run).
final class LaunchScaleTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testDefaultRanksArePowersOfTwoUpToTheCores() throws {
        let cores = try self.cores()
        let expected = Array(sequence(first: 1) { $0 * 2 }.prefix { $0 < cores }) + [cores]
        let lines = try dryRun(["--model", "mlp", "--mode", "weak"])
        XCTAssertEqual(lines, expected.map {
            "mpirun -np \($0) --bind-to core gantry bench --model mlp --batch-size 64 --threads 1"
        })
    }

    func testOversubscribesWhenRanksTimesThreadsPassTheSlots() throws {
        let hostfile = try temporaryHostfile("node01 slots=2\n")
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let lines = try dryRun(["--hostfile", hostfile.path, "--ranks", "3,1,2", "--threads", "1,2", "--model", "mlp",
                                "--mode", "weak"])
        let h = "--hostfile \(hostfile.path)"
        XCTAssertEqual(lines, [
            "mpirun -np 1 \(h) --bind-to core gantry bench --model mlp --batch-size 64 --threads 1",
            "mpirun -np 2 \(h) --bind-to core gantry bench --model mlp --batch-size 64 --threads 1",
            "mpirun -np 3 \(h) --oversubscribe --bind-to none gantry bench --model mlp --batch-size 64 --threads 1",
            "mpirun -np 1 \(h) --map-by slot:PE=2 --bind-to core gantry bench --model mlp --batch-size 64 --threads 2",
            "mpirun -np 2 \(h) --oversubscribe --bind-to none gantry bench --model mlp --batch-size 64 --threads 2",
            "mpirun -np 3 \(h) --oversubscribe --bind-to none gantry bench --model mlp --batch-size 64 --threads 2",
        ])
    }

    func testOversubscribesPastThisHostsCores() throws {
        let cores = try self.cores()
        let lines = try dryRun(["--ranks", "\(cores),\(cores + 1)", "--model", "dcgan", "--mode", "weak"])
        XCTAssertEqual(lines, [
            "mpirun -np \(cores) --bind-to core gantry bench --model dcgan --batch-size 64 --threads 1",
            "mpirun -np \(cores + 1) --oversubscribe --bind-to none gantry bench --model dcgan --batch-size 64 --threads 1",
        ])
    }

    func testStrongScalingDividesTheGlobalBatchAndSkipsWhatDoesNotDivideIt() throws {
        let hostfile = try temporaryHostfile("# four slots\nnode01 slots=4\n")
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let result = try run(["--hostfile", hostfile.path, "--ranks", "1,2,3,4", "--model", "mlp", "--mode", "strong",
                              "--global-batch", "8", "--steps", "20", "--warmup", "5", "--", "--isa", "avx2"])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(lines(result.output), [1, 2, 4].map {
            "mpirun -np \($0) --hostfile \(hostfile.path) --bind-to core gantry bench --model mlp --batch-size \(8 / $0) "
                + "--threads 1 --steps 20 --warmup 5 --isa avx2"
        })
        XCTAssertEqual(result.errors, "launch/scale: strong scaling skips 3 ranks: 3 does not divide the global batch 8\n")
    }

    func testStrongScalingDefaultsToTheBatchTimesTheLargestRankCount() throws {
        let lines = try dryRun(["--ranks", "1,2", "--model", "mlp", "--mode", "weak,strong", "--batch", "32"])
        XCTAssertEqual(lines.map { $0.firstMatch(of: #/-np (\d+) .* --batch-size (\d+) /#).map { "\($0.1)x\($0.2)" } },
                       ["1x32", "2x32", "1x64", "2x32"])
    }

    func testTakesTheSlotsOfTheDefaultHostfile() throws {
        let hostfile = try temporaryHostfile("node01 slots=2\nnode02\n")
        defer { try? FileManager.default.removeItem(at: hostfile) }
        let lines = try dryRun(["--model", "mlp", "--mode", "weak"], hostfile: hostfile.path)
        XCTAssertEqual(lines.map { $0.prefix(while: { $0 != "g" }) }, ["mpirun -np 1 --bind-to core ", "mpirun -np 2 --bind-to core ",
                                                                        "mpirun -np 3 --bind-to core "])
    }

    func testRejectsBadArgumentsInOneLine() throws {
        let cases: [([String], String)] = [
            (["--ranks", "0"], "launch/scale: --ranks wants positive numbers separated by commas, not '0'"),
            (["--ranks", "x"], "launch/scale: --ranks wants positive numbers separated by commas, not 'x'"),
            (["--ranks", "1,,2"], "launch/scale: --ranks wants positive numbers separated by commas, not '1,,2'"),
            (["--ranks"], "launch/scale: --ranks needs a value"),
            (["--threads", "-1"], "launch/scale: --threads wants positive numbers separated by commas, not '-1'"),
            (["--mode", "nope"], "launch/scale: --mode wants one or more of weak,strong, separated by commas, not 'nope'"),
            (["--model", "mlp,gan"], "launch/scale: --model wants one or more of mlp,dcgan, separated by commas, not 'mlp,gan'"),
            (["--batch", "0"], "launch/scale: --batch wants a positive number, not '0'"),
            (["--repeat=two"], "launch/scale: --repeat wants a positive number, not 'two'"),
            (["--warmup", "-1"], "launch/scale: --warmup wants a number of 0 or more, not '-1'"),
            (["--hostfile", "/nonexistent/hosts"], "launch/scale: cannot read hostfile '/nonexistent/hosts'"),
            (["--np", "2"], "launch/scale: unknown argument '--np' (try --help; gantry bench options go after --)"),
            (["--", "--batch-size", "8"],
             "launch/scale: --batch-size after -- would override the sweep's; give launch/scale's own options (try --help)"),
            (["--ranks", "3", "--mode", "strong", "--global-batch", "8"],
             "launch/scale: nothing to run: no rank count divides the global batch 8"),
        ]
        for (arguments, message) in cases {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.output, "", "\(arguments)")
            XCTAssertEqual(result.errors, message + "\n", "\(arguments)")
        }
    }

    /// The cores of this host, as launch/train counts them: its default -np.
    private func cores() throws -> Int {
        let process = Process()
        process.executableURL = repository.appendingPathComponent("launch/train")
        process.environment = environment(hostfile: nil)
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let line = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return try XCTUnwrap(line.firstMatch(of: #/mpirun -np ([0-9]+) /#).flatMap { Int($0.1) }, line)
    }

    private func temporaryHostfile(_ text: String) throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-hosts-\(UUID().uuidString)")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The mpirun lines, with the binary's path shortened to `gantry`.
    private func dryRun(_ arguments: [String], hostfile: String? = nil) throws -> [String] {
        let result = try run(arguments, hostfile: hostfile)
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.errors, "")
        return lines(result.output)
    }

    /// Output lines without the root variables launch/scale adds when uid is 0.
    private func lines(_ output: String) -> [String] {
        let rootPrefix = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
        return output.split(separator: "\n").map { line in
            XCTAssertEqual(line.hasPrefix(rootPrefix), getuid() == 0, String(line))
            return String(line.hasPrefix(rootPrefix) ? line.dropFirst(rootPrefix.count) : line)
                .replacingOccurrences(of: repository.path + "/.build/release/gantry", with: "gantry")
        }
    }

    private func environment(hostfile: String?) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["GANTRY_DRY_RUN"] = "1"
        environment["OMPI_MCA_orte_default_hostfile"] = hostfile
        return environment
    }

    private func run(_ arguments: [String], hostfile: String? = nil) throws -> (status: Int32, output: String, errors: String) {
        try runLaunchScript("scale", arguments, environment: environment(hostfile: hostfile))
    }
}
