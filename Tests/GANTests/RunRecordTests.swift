import GAN
import TestSupport
import XCTest

/// run.json: what it keeps of a run reads back the same, and what is not one is refused by name.
final class RunRecordTests: XCTestCase {
    private func record() -> RunRecord {
        var c = GANConfiguration.defaults(for: .dcgan)
        c.seed = 7
        c.generatorAverageDecay = 0.999
        var o = TrainingOptions(outputDirectory: "runs/a")
        o.length = .epochs(3)
        o.logEvery = 25; o.sampleEvery = 0; o.evaluateEvery = 500; o.histogramEvery = 100; o.tensorboard = false
        o.maxSeconds = 600; o.exchange.halfPrecision = true; o.exchange.bucketBytes = 1 << 20
        return RunRecord(gantry: .init(version: "1.2.3", commit: "abc"), command: ["gantry", "train"], configuration: c,
                         schedule: .init(o), evaluationCount: 5000, ranks: 2, threads: 1, hosts: ["a", "b"], cpu: "cpu",
                         kernels: "avx2", dataDirectory: "/data", dataFiles: [])
    }

    func testTheRecordReadsBackAsWritten() throws {
        let path = makeTemporaryDirectory(self) + "/run.json"
        let written = record()
        writeRaw(try written.json(), to: path)
        XCTAssertEqual(try RunRecord.read(path: path), written)
        XCTAssertEqual(try written.json(), try RunRecord.read(path: path).json(), "sorted keys: the same record, the same bytes")
    }

    func testTheScheduleGivesBackTheOptionsItWasMadeFrom() {
        let options = record().schedule.options(outputDirectory: "runs/b")
        XCTAssertEqual(options.outputDirectory, "runs/b")
        XCTAssertEqual(options.length, .epochs(3))
        XCTAssertEqual([options.logEvery, options.sampleEvery, options.evaluateEvery, options.histogramEvery], [25, 0, 500, 100])
        XCTAssertFalse(options.tensorboard)
        XCTAssertEqual(options.maxSeconds, 600)
        XCTAssertTrue(options.exchange.halfPrecision)
        XCTAssertEqual(options.exchange.bucketBytes, 1 << 20)
        XCTAssertEqual(RunRecord.Schedule(options), record().schedule)
    }

    func testWhatIsNotARunRecordIsRefusedInOneLine() {
        let dir = makeTemporaryDirectory(self)
        assertThrows("--config \(dir)/none.json: cannot read the file; pass the run.json a gantry train run wrote in its --out folder") {
            _ = try RunRecord.read(path: dir + "/none.json")
        }
        writeRaw(Array("{\"x\": 1}".utf8), to: dir + "/other.json")
        assertThrows("--config \(dir)/other.json is not a run.json of gantry train (no \"gantry\"); pass the run.json from a run's --out folder") {
            _ = try RunRecord.read(path: dir + "/other.json")
        }
        writeRaw(Array("not json".utf8), to: dir + "/text.json")
        assertThrows("--config \(dir)/text.json is not a run.json of gantry train (not JSON); pass the run.json from a run's --out folder") {
            _ = try RunRecord.read(path: dir + "/text.json")
        }
    }
}
