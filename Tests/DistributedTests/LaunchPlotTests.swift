import XCTest
import Foundation

/// launch/plot on small metrics.jsonl fixtures: one PNG with a panel per group of figures the
/// file holds, and one line for each bad argument or file.
final class LaunchPlotTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-plot-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: directory) }

    /// A cross-entropy run's records with evaluations between, and a last line cut short (a run still writing).
    let crossEntropy = (1 ... 30).map { s in
        "{\"step\":\(s * 100),\"epoch\":0,\"d_loss\":\(1.3 - Double(s) / 100),\"g_loss\":\(0.8 + Double(s) / 50),"
            + "\"d_real\":0.6,\"d_fake\":0.4,\"images_per_s\":5000,\"seconds\":\(s)}"
            + (s % 10 == 0 ? "\n{\"step\":\(s * 100),\"fid\":\(300 - s * 5),\"score\":\(1 + Double(s) / 10),\"coverage\":0.\(s)}" : "")
    }.joined(separator: "\n") + "\n{\"step\":3100,\"d_lo"

    /// A WGAN-GP run's: the Wasserstein estimate and penalty, no D(x); one penalty not finite (null).
    let wassersteinGP = (1 ... 20).map { s in
        "{\"step\":\(s * 50),\"epoch\":0,\"d_loss\":-\(Double(s) / 10),\"g_loss\":\(Double(s) / 20),\"wasserstein\":\(Double(s) / 10),"
            + "\"critic_real\":1,\"critic_fake\":0.5,\"penalty\":\(s == 7 ? "null" : "0.\(s)"),\"images_per_s\":900,\"seconds\":\(s)}"
    }.joined(separator: "\n") + "\n"

    func testOnePNGWithAPanelPerGroupThatTheMetricsHold() throws {
        try requireTools()
        let out = try runFolder("ce", metrics: crossEntropy)
        let result = try plot([out])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.output, "launch/plot: wrote \(out)/plot.png (3 panel(s): losses, D(x) and D(G(z)), evaluation (--eval-every))\n")
        XCTAssertEqual(try pngSize(out + "/plot.png"), [1000, 40 + 3 * 280])
        let script = try String(contentsOfFile: out + "/plot.gp", encoding: .utf8)
        XCTAssert(script.contains("$fid << EOD\n1000 250\n2000 200\n3000 150\nEOD\n"), script)
        XCTAssert(script.contains("set xrange [100:3000]"), script)
        XCTAssertFalse(script.contains("$wasserstein"), script)
    }

    func testWassersteinRunsGetTheirPanelAndNullsAreSkipped() throws {
        try requireTools()
        let out = try runFolder("wgan", metrics: wassersteinGP)
        let png = directory + "/elsewhere.png"
        let result = try plot([out + "/", png])
        XCTAssertEqual(result.status, 0, result.errors)
        XCTAssertEqual(result.output, "launch/plot: wrote \(png) (2 panel(s): losses, Wasserstein estimate and gradient penalty)\n")
        XCTAssertEqual(try pngSize(png), [1000, 40 + 2 * 280])
        let script = try String(contentsOfFile: directory + "/elsewhere.gp", encoding: .utf8)
        XCTAssert(script.contains("300 0.6\n400 0.8\n"), "step 350's null penalty is skipped: \(script)")
        XCTAssertFalse(script.contains("$d_real"), script)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/plot.png"))
    }

    func testBadArgumentsAndFilesGetOneLine() throws {
        let empty = try runFolder("empty", metrics: "")
        let cut = try runFolder("cut", metrics: "{\"step\":100,\"d_lo")
        let noMetrics = directory + "/bare"
        try FileManager.default.createDirectory(atPath: noMetrics, withIntermediateDirectories: true)
        var cases: [([String], String)] = [
            ([], "launch/plot: usage: launch/plot OUT [PNG] (OUT: a gantry train --out folder)"),
            ([directory + "/nowhere"], "launch/plot: no folder '\(directory)/nowhere' (give the --out folder of a gantry train run)"),
            ([noMetrics], "launch/plot: no \(noMetrics)/metrics.jsonl: '\(noMetrics)' is not a training run's folder, or its run has not started"),
            ([empty, directory + "/plot.svg"], "launch/plot: the plot's name should end in .png, not '\(directory)/plot.svg'"),
            ([empty, directory + "/nowhere/plot.png"], "launch/plot: no folder '\(directory)/nowhere' for \(directory)/nowhere/plot.png"),
        ]
        if tools() {
            cases += [
                ([empty], "launch/plot: \(empty)/metrics.jsonl holds no records yet (the run adds one every --log-every steps)"),
                ([cut], "launch/plot: \(cut)/metrics.jsonl holds no records yet (the run adds one every --log-every steps)"),
            ]
        }
        for (arguments, line) in cases {
            let result = try plot(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.errors, line + "\n")
            XCTAssertEqual(result.output, "")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty + "/plot.png"))
    }

    // MARK: Helpers

    /// Whether jq and gnuplot are installed (else launch/plot would install them first).
    private func tools() -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return ["jq", "gnuplot"].allSatisfy { tool in
            path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }
    }

    private func requireTools() throws {
        if !tools() { throw XCTSkip("needs jq and gnuplot (launch/setup --gnuplot installs them)") }
    }

    private func runFolder(_ name: String, metrics: String) throws -> String {
        let out = directory + "/" + name
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try metrics.write(toFile: out + "/metrics.jsonl", atomically: true, encoding: .utf8)
        return out
    }

    /// A PNG's width and height, from its IHDR chunk.
    private func pngSize(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(bytes.prefix(16)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8))
        return [16, 20].map { at in bytes[at ..< at + 4].reduce(0) { $0 << 8 | Int($1) } }
    }

    private func plot(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
        try runLaunchScript("plot", arguments)
    }
}
