import Distributed
import FileFormats
import Foundation
import Kernels
import TestSupport
import XCTest
@testable import GAN

/// OUT/progress.gif and OUT/samples.png: their frames and rows are the grids, at most a limit
/// of them evenly spaced, and a resumed run writes the bytes an uninterrupted one writes.
final class SampleAnimationTests: XCTestCase {
    var directory = ""

    override func setUp() { directory = makeTemporaryDirectory(self, prefix: "gantry-animation") }

    // MARK: Which grids are shown

    func testSelectionKeepsEvenlySpacedGridsAndTheNewestWithinTheLimit() {
        for limit in [2, 3, 5, 100] {
            var previous: Set<Int> = []
            for count in 1 ... 600 {
                let shown = Set((0 ..< count).filter { SampleSelection.shows($0, of: count, limit: limit) })
                let stride = SampleSelection.stride(count: count, limit: limit)
                XCTAssertLessThanOrEqual(shown.count, limit, "\(count) grids")
                XCTAssert(shown.contains(0) && shown.contains(count - 1), "the first and the newest of \(count)")
                XCTAssertEqual(shown, Set(Swift.stride(from: 0, to: count - 1, by: stride)).union([count - 1]), "\(count) grids")
                // Stride 1 until the limit is reached; afterwards the smallest power of two that fits.
                XCTAssertEqual(stride == 1, count <= limit, "\(count) grids")
                if stride > 1 { XCTAssertGreaterThan((count - 1 + stride / 2 - 1) / (stride / 2) + 1, limit) }
                // A grid passed over is never shown again: frames can be dropped as the run goes.
                XCTAssert(shown.isSubset(of: previous.union([count - 1])), "\(count) grids")
                previous = shown
            }
        }
        XCTAssertEqual(SampleSelection.stride(count: 21, limit: 100), 1)
        XCTAssertEqual([1, 16, 21, 79, 80, 100].map { SampleAnimation.frameDelay(frames: $0) }, [50, 50, 38, 10, 10, 10])
        XCTAssertEqual(SampleSelection.stride(count: 10_001, limit: 100), 128)
        XCTAssertEqual((0 ..< 10_001).filter { SampleSelection.shows($0, of: 10_001, limit: 100) }.count, 80)
    }

    // MARK: The files, from grids written by hand

    /// Grid `k` of a run: 12 images of 5x6 in 4 columns, padding 2 (34x23), pixels from `seed`.
    func grid(_ k: Int, seed: UInt64 = 1) -> GrayscaleImage {
        var values = [Float](repeating: 0, count: 34 * 23)
        RandomStream(seed: seed &+ UInt64(k) &* 7919).fillUniform(&values, count: values.count, low: 0, high: 255)
        return GrayscaleImage(width: 34, height: 23, pixels: values.map { UInt8($0) })
    }

    func gridPath(_ out: String, step: Int) -> String { out + "/samples/step-" + String(format: "%08d", step) + ".png" }

    func animation(_ out: String, limit: Int) -> SampleAnimation {
        SampleAnimation(outputDirectory: out, sampleDirectory: out + "/samples", imageHeight: 5, imageWidth: 6, frameLimit: limit)
    }

    /// Writes grid `k` (step 10k + 10) and tells `output`, as the run loop does.
    func save(_ k: Int, into out: String, to output: SampleAnimation) throws {
        try PNG.writeGrayscale(path: gridPath(out, step: 10 * k + 10), image: grid(k))
        try output.record(.saved(SavedFile(kind: .samples, path: gridPath(out, step: 10 * k + 10), step: 10 * k + 10, last: false)))
    }

    func testFramesAndRowsAreTheGridsShownAfterEachGrid() throws {
        let out = directory + "/live"
        try createDirectory(out + "/samples")
        let output = animation(out, limit: 5)
        for k in 0 ..< 23 {
            try save(k, into: out, to: output)
            let shown = (0 ... k).filter { SampleSelection.shows($0, of: k + 1, limit: 5) }
            let gif = try XCTUnwrap(DecodedGIF(path: out + "/progress.gif"))
            XCTAssertEqual([gif.width, gif.height], [34, 23])
            XCTAssertEqual(gif.frames, shown.map { grid($0).pixels }, "after grid \(k)")
            XCTAssertEqual(gif.delays, Array(repeating: min(50, 800 / shown.count), count: shown.count - 1) + [200])
            XCTAssertEqual(gif.loopCount, 0)
            // Each row: the grid's top band (the padding above its first row of images).
            let sheet = try PNG.readGrayscale(path: out + "/samples.png")
            XCTAssertEqual(sheet, ContactSheet.render(rows: shown.map { (10 * $0 + 10, grid($0).cropped(x: 0, y: 0, width: 34, height: 7)) }))
        }
    }

    /// Resumed after any number of grids, with a previous run's grids of later steps still in
    /// the folder (they are rewritten as the run reaches them), the files are the same bytes.
    func testResumingAfterAnyGridWritesTheSameFiles() throws {
        let whole = directory + "/whole"
        try createDirectory(whole + "/samples")
        let uninterrupted = animation(whole, limit: 5)
        for k in 0 ..< 23 { try save(k, into: whole, to: uninterrupted) }

        for resumedAfter in [1, 5, 6, 16, 22] {
            let out = directory + "/resumed-\(resumedAfter)"
            try createDirectory(out + "/samples")
            for k in 0 ..< 23 {
                // Grids past the checkpoint were drawn from other parameters than the resumed run's.
                try PNG.writeGrayscale(path: gridPath(out, step: 10 * k + 10), image: k < resumedAfter ? grid(k) : grid(k, seed: 99))
            }
            let resumed = animation(out, limit: 5)
            try resumed.readBack(through: 10 * resumedAfter)
            for k in resumedAfter ..< 23 { try save(k, into: out, to: resumed) }
            XCTAssert(fileBytes(out + "/progress.gif") == fileBytes(whole + "/progress.gif"), "progress.gif, resumed after \(resumedAfter) grids")
            XCTAssert(fileBytes(out + "/samples.png") == fileBytes(whole + "/samples.png"), "samples.png, resumed after \(resumedAfter) grids")
        }
    }

    func testADamagedGridIsNamed() throws {
        let out = directory + "/damaged"
        try createDirectory(out + "/samples")
        try PNG.writeGrayscale(path: gridPath(out, step: 10), image: grid(0))
        writeRaw(Array("not a png".utf8), to: gridPath(out, step: 20))
        assertThrows("\(gridPath(out, step: 20)) is not a PNG file (it does not start with the PNG signature)") {
            try animation(out, limit: 5).readBack(through: 20)
        }
        // Grids after the step resumed from are not read.
        try animation(out, limit: 5).readBack(through: 19)
    }

    // MARK: In a training run

    func configuration() -> GANConfiguration {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        c.seed = 5
        return c
    }

    @discardableResult
    func train(_ out: String, steps: Int, sampleEvery: Int, checkpointEvery: Int = 0, resume: ResumeSource? = nil,
               stopAfter: Int? = nil) throws -> RunOutcome {
        var options = TrainingOptions(outputDirectory: out)
        options.length = .steps(steps)
        options.logEvery = 100
        options.sampleEvery = sampleEvery
        options.sampleCount = 16
        options.checkpointEvery = checkpointEvery
        options.keep = 100
        options.resume = try resume.map {
            try ResumePlan.make($0, directory: options.checkpointDirectory, request: ConfigurationRequest(configuration()),
                                communicator: SingleProcessCommunicator())
        }
        var requests = 0
        return try TrainingRun(configuration: configuration(), options: options, data: SyntheticData(count: 40, batch: 8),
                               communicator: SingleProcessCommunicator(), stopRequest: {
                                   requests += 1
                                   return stopAfter.map { requests >= $0 } == true ? SIGINT : nil
                               }).run()
    }

    func testARunsFramesAndRowsAreItsGrids() throws {
        let out = directory + "/run"
        try train(out, steps: 10, sampleEvery: 3)
        let grids = SampleAnimation.gridFiles(in: out + "/samples")
        XCTAssertEqual(grids.map(\.step), [3, 6, 9, 10])
        let images = try grids.map { try PNG.readGrayscale(path: $0.path) }
        XCTAssertEqual([images[0].width, images[0].height], [122, 122], "16 images of 28x28 in 4 columns")
        let gif = try XCTUnwrap(DecodedGIF(path: out + "/progress.gif"))
        XCTAssertEqual(gif.frames, images.map(\.pixels))
        XCTAssertEqual(gif.delays, [50, 50, 50, 200], "few frames: half a second each, the last held 2 s")
        // The sheet: a row per grid, its first 4 images (all its columns), steps on the left.
        let sheet = try PNG.readGrayscale(path: out + "/samples.png")
        let labelWidth = 2 * 16 + 2 * 8
        XCTAssertEqual([sheet.width, sheet.height], [labelWidth + 122, 4 * 30 + 3 + 2])
        for (row, image) in images.enumerated() {
            XCTAssertEqual(sheet.cropped(x: labelWidth, y: row * 31, width: 122, height: 30), image.cropped(x: 0, y: 0, width: 122, height: 30))
        }
        XCTAssertEqual(sheet, ContactSheet.render(rows: zip(grids, images).map { ($0.step, $1.cropped(x: 0, y: 0, width: 122, height: 30)) }))
    }

    /// Stopped by a signal after step 5 and resumed, or resumed from an older checkpoint with
    /// the later grids already there: the same bytes as a run never interrupted.
    func testAResumedRunWritesTheFilesOfAnUninterruptedOne() throws {
        let whole = directory + "/whole"
        try train(whole, steps: 12, sampleEvery: 2)

        let stopped = directory + "/stopped"
        XCTAssertEqual(try train(stopped, steps: 12, sampleEvery: 2, stopAfter: 5),
                       .stopped(RunStop(signal: SIGINT, step: 5, checkpoint: stopped + "/checkpoints/" + Checkpoint.fileName(step: 5),
                                        outputDirectory: stopped)))
        XCTAssertEqual(DecodedGIF(path: stopped + "/progress.gif")?.frames.count, 2)
        try train(stopped, steps: 12, sampleEvery: 2, resume: .latest)

        let again = directory + "/again"
        try train(again, steps: 12, sampleEvery: 2, checkpointEvery: 4)
        try train(again, steps: 12, sampleEvery: 2, resume: .file(again + "/checkpoints/" + Checkpoint.fileName(step: 4)))

        for out in [stopped, again] {
            XCTAssert(fileBytes(out + "/progress.gif") == fileBytes(whole + "/progress.gif"), "\(out)/progress.gif differs")
            XCTAssert(fileBytes(out + "/samples.png") == fileBytes(whole + "/samples.png"), "\(out)/samples.png differs")
        }
        XCTAssertEqual(DecodedGIF(path: whole + "/progress.gif")?.frames.count, 6)
    }
}
