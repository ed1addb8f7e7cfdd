import Backends
import Distributed
import FileFormats
import Foundation
import Kernels
import Optim
import XCTest
@testable import GAN

/// `--ema`: the trainer keeps a moving average of the generator, checkpoints carry it, and
/// every image a run or a checkpoint gives comes from it.
final class GeneratorAverageTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-ema-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func configuration(decay: Float = 0.9) -> GANConfiguration {
        var c = GANConfiguration.defaults(for: .dcgan)
        c.batchSize = 4
        c.seed = 5
        c.generatorAverageDecay = decay
        return c
    }

    func run(_ out: String, steps: Int, decay: Float = 0.9, resume: Bool = false, checkpointEvery: Int = 0) throws -> TrainingRun {
        var options = TrainingOptions(outputDirectory: out)
        options.length = .steps(steps)
        options.sampleEvery = 0
        options.checkpointEvery = checkpointEvery
        options.sampleCount = 4
        options.resume = resume
            ? try ResumePlan.make(.latest, directory: options.checkpointDirectory,
                                  request: ConfigurationRequest(configuration(decay: decay)),
                                  communicator: SingleProcessCommunicator())
            : nil
        let run = try TrainingRun(configuration: configuration(decay: decay), options: options,
                                  data: SyntheticData(count: 16, batch: 4), communicator: SingleProcessCommunicator())
        try run.run()
        return run
    }

    /// After each generator update t, every parameter and running statistic of the averaged
    /// generator is θ̄ + (1 − β_t)(θ − θ̄), starting from the initial generator.
    func testAverageFollowsTheGeneratorUpdateByUpdate() throws {
        let trainer = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        let live = trainer.models.generator, averaged = try XCTUnwrap(trainer.averagedGenerator)
        var expected = live.stores.map { Array($0.values) }
        XCTAssertEqual(averaged.stores.map { Array($0.values) }, expected, "the average starts at the initial generator")
        let data = SyntheticData(count: 16, batch: 4), average = MovingAverage(decay: 0.9)
        for step in 0 ..< 4 {
            _ = try trainer.step(data: data, step: step)
            for (i, store) in live.stores.enumerated() {
                let rate = 1 - average.decay(atUpdate: step + 1)
                expected[i] = zip(expected[i], store.values).map { a, v in a + rate * (v - a) }
            }
            XCTAssertEqual(averaged.stores.map { Array($0.values) }, expected, "after step \(step)")
        }
        XCTAssertNotEqual(Array(averaged.parameters.values), Array(live.parameters.values))
        XCTAssertNotEqual(Array(averaged.state.values), Array(live.state.values), "batch norm's statistics are averaged too")
    }

    func testNoAverageUnlessAsked() throws {
        let trained = try run(directory + "/plain", steps: 2, decay: 0)
        XCTAssertNil(trained.trainer.averagedGenerator)
        let file = try SafetensorsFile(path: directory + "/plain/checkpoints/" + Checkpoint.fileName(step: 2))
        XCTAssertFalse(file.tensors.contains { $0.name.hasPrefix(Checkpoint.averagedGeneratorName) })
    }

    /// The checkpoint holds the average beside the generator; a restored trainer and
    /// `Sampler` (gantry sample, gantry eval) draw the images the run drew, from the average.
    func testCheckpointsKeepTheAverageAndImagesComeFromIt() throws {
        let trained = try run(directory + "/a", steps: 3)
        let path = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 3)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(try file.info(named: "generator_ema.5.moving_variance").shape, [128])
        XCTAssertEqual(try file.info(named: "generator_ema.0.kernel").shape, try file.info(named: "generator.0.kernel").shape)

        let fresh = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        XCTAssertEqual(try Checkpoint.restore(fresh, from: path), 3)
        let averaged = try XCTUnwrap(trained.trainer.averagedGenerator)
        XCTAssertEqual(fresh.averagedGenerator!.stores.map { Array($0.values) }, averaged.stores.map { Array($0.values) })

        var fromRun = [Float](repeating: 0, count: 3 * 784), fromSampler = fromRun, fromLive = fromRun
        trained.trainer.generate(count: 3, stream: RandomStream(seed: 1), into: &fromRun)
        try Sampler(checkpoint: path).generate(count: 3, stream: RandomStream(seed: 1), into: &fromSampler)
        XCTAssertEqual(fromSampler, fromRun)
        let noise = UnsafeMutableBufferPointer<Float>.allocate(capacity: 4 * 100)
        defer { noise.deallocate() }
        generateImages(trained.trainer.models.generator, noise: noise, configuration: configuration(), count: 3,
                       stream: RandomStream(seed: 1), firstExample: 0, into: &fromLive, backend: Backends.automatic())
        XCTAssertNotEqual(fromRun, fromLive, "the images are the average's, not the last iterate's")
    }

    func testResumedRunAveragesAsAnUninterruptedOne() throws {
        let whole = try run(directory + "/whole", steps: 6)
        _ = try run(directory + "/split", steps: 3, checkpointEvery: 3)
        let resumed = try run(directory + "/split", steps: 6, resume: true)
        XCTAssertEqual(resumed.trainer.averagedGenerator!.stores.map { Array($0.values) },
                       whole.trainer.averagedGenerator!.stores.map { Array($0.values) })
    }

    func testDecayIsCheckedAndKeptOnResume() throws {
        var c = configuration(decay: 1)
        XCTAssertThrowsError(try c.validate()) { error in
            XCTAssertEqual("\(error)", "--ema must be in [0, 1), got 1.0; pass e.g. --ema 0.999, or --ema 0 for none")
        }
        c.generatorAverageDecay = 0.999
        XCTAssertNoThrow(try c.validate())
        var request = ConfigurationRequest()
        request.generatorAverageDecay = 0.99
        XCTAssertThrowsError(try request.resumed(from: c, path: "x.safetensors")) { error in
            XCTAssertEqual(error as? CheckpointError,
                           .settingChanged(path: "x.safetensors", flag: "--ema", stored: "0.999", requested: "0.99"))
        }
    }
}
