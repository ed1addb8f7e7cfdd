import Distributed
import Kernels
import Foundation
import XCTest
@testable import GAN

/// What a run tells its outputs: the timeline's trace, the profile in metrics.jsonl, and the
/// buckets gradients travel in.
final class OutputsTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-outputs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Trains the MLP GAN a few steps with `outputs` and `profile`; returns the run's folder.
    @discardableResult
    func train(steps: Int = 4, profile: Bool = false, outputs: [TrainingOutput] = []) throws -> String {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        var options = TrainingOptions(outputDirectory: directory + "/run")
        options.length = .steps(steps)
        options.logEvery = 2
        options.sampleEvery = 0
        options.checkpointEvery = 0
        options.sampleCount = 4
        options.profile = profile
        try TrainingRun(configuration: c, options: options, data: SyntheticData(count: 32, batch: 8),
                        communicator: SingleProcessCommunicator(), outputs: outputs).run()
        return options.outputDirectory
    }

    func testTimelineIsAChromeTraceOfEveryLayerPassAndPhase() throws {
        let path = directory + "/trace.json"
        try train(outputs: [Timeline(path: path, communicator: SingleProcessCommunicator())])
        let events = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]])
        let spans = events.filter { $0["ph"] as? String == "X" }
        for span in spans {
            XCTAssertEqual(span["pid"] as? Int, 0)
            XCTAssert((span["ts"] as? Double ?? -1) >= 0 && (span["dur"] as? Double ?? -1) >= 0, "\(span)")
        }
        let names = Set(spans.compactMap { $0["name"] as? String })
        // The MLP GAN: G is Dense, LeakyReLU, Dense, Tanh; D is Dense, LeakyReLU, Dense.
        for expected in ["G.0 Dense 100 -> 128 forward", "G.2 Dense 128 -> 784 backward", "D.0 Dense 784 -> 128 backward",
                         "data", "optimizer", "all-reduce (waiting)", "checkpoint"] {
            XCTAssert(names.contains(expected), "no span named \(expected) in \(names.sorted())")
        }
        // 4 steps: each runs G forward twice (D's turn, G's turn), G backward once; the
        // sample grid at the end once more.
        XCTAssertEqual(spans.filter { $0["name"] as? String == "G.0 Dense 100 -> 128 forward" }.count, 9)
        XCTAssertEqual(spans.filter { $0["name"] as? String == "samples" }.count, 1)
        XCTAssertEqual(spans.filter { $0["name"] as? String == "G.0 Dense 100 -> 128 backward" }.count, 4)
        XCTAssertEqual(spans.filter { $0["name"] as? String == "data" }.count, 4)
        XCTAssert(events.contains { $0["name"] as? String == "process_name" }, "no process name")
    }

    func testProfileSplitsEachStepInMetrics() throws {
        let out = try train(profile: true)
        let records = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        XCTAssertEqual(records.count, 2)
        for record in records {
            let profile = try XCTUnwrap(record["profile"] as? [[String: Any]])
            XCTAssertEqual(profile.count, 1)
            XCTAssertEqual(profile[0]["rank"] as? Int, 0)
            XCTAssertGreaterThan(profile[0]["compute"] as? Double ?? 0, 0)
            let phases = try XCTUnwrap(profile[0]["phases"] as? [String: Double])
            XCTAssertGreaterThan(phases["forward"] ?? 0, 0)
            XCTAssertGreaterThan(phases["backward"] ?? 0, 0)
        }
    }

    /// Buckets close at the first layer boundary at or past the size, walking from the last
    /// layer; layers without parameters belong to none; the first layer closes the last bucket.
    func testBucketsCutAtLayerBoundariesFromTheLastLayer() {
        let cut = NetworkBuckets.cut([0..<10, 10..<10, 10..<30, 30..<31, 31..<31], maxElements: 15)
        XCTAssertEqual(cut.buckets, [10..<31, 0..<10])
        XCTAssertEqual(cut.completes, [1, nil, 0, nil, nil])
        let one = NetworkBuckets.cut([0..<10, 10..<10, 10..<30], maxElements: 1000)
        XCTAssertEqual(one.buckets, [0..<30])
        XCTAssertEqual(one.completes, [0, nil, nil])
        let each = NetworkBuckets.cut([0..<10, 10..<30], maxElements: 1)
        XCTAssertEqual(each.buckets, [10..<30, 0..<10])
    }

    /// The multi-rank check of overlap against one all-reduce uses 256-byte buckets to cut the
    /// MLP's networks into one per layer with parameters; this says they do.
    func testTinyBucketsCutTheMLPIntoOnePerLayer() {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 4
        let models = GANModels(configuration: c, maxBatch: 4, backend: ReferenceBackend())
        for role in NetworkRole.allCases {
            let network = models[role]
            let cut = NetworkBuckets.cut(network.layers.indices.map(network.parameterRange(ofLayer:)), maxElements: 64)
            XCTAssertEqual(cut.buckets.count, 2, "\(role): two Dense layers")
            XCTAssertEqual(cut.buckets.map(\.count).reduce(0, +), network.parameters.count, "\(role): buckets miss parameters")
        }
    }

    /// A NaN pixel in step 3's batch: D's averaged gradients are NaN, the run stops in step 3
    /// naming D, before the update; the checkpoint of step 2 stays the last one written.
    func testNonFiniteGradientsStopTheRunBeforeTheUpdate() throws {
        final class PoisonedData: TrainingData {
            let clean = SyntheticData(count: 32, batch: 8)
            var batchesPerEpoch: Int { clean.batchesPerEpoch }
            func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>) {
                clean.copyBatch(epoch: epoch, index: index, into: destination)
                if epoch == 0 && index == 2 { destination[5] = .nan }
            }
        }
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        var options = TrainingOptions(outputDirectory: directory + "/nan")
        options.length = .steps(6)
        options.sampleEvery = 0
        options.checkpointEvery = 1
        let run = try TrainingRun(configuration: c, options: options, data: PoisonedData(),
                                  communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try run.run()) { error in
            XCTAssertEqual(error as? TrainingError, .diverged(step: 3, network: .discriminator))
            XCTAssertEqual("\(error)", "the discriminator's gradients are not finite (NaN or infinity) in step 3: training "
                + "diverged; the run stops before updating, its checkpoints are intact; lower --lr, or resume from an earlier checkpoint")
        }
        XCTAssertEqual(Checkpoint.latest(in: options.checkpointDirectory), options.checkpointDirectory + "/" + Checkpoint.fileName(step: 2))
        let parameters = Array(run.trainer.models.discriminator.parameters.values)
        XCTAssert(parameters.allSatisfy(\.isFinite), "the update ran on NaN gradients")
    }
}

/// How a run ends early: a stop request, a runaway loss.
final class RunEndTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-run-end-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func run(steps: Int, maxLoss: Double = 1e6, maxSeconds: Double? = nil,
             stopRequest: @escaping () -> Int32? = { nil }) throws -> (TrainingRun, RunOutcome) {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        var options = TrainingOptions(outputDirectory: directory)
        options.length = .steps(steps)
        options.sampleEvery = 0
        options.checkpointEvery = 0
        options.maxLoss = maxLoss
        options.maxSeconds = maxSeconds
        let run = try TrainingRun(configuration: c, options: options, data: SyntheticData(count: 32, batch: 8),
                                  communicator: SingleProcessCommunicator(), stopRequest: stopRequest)
        return (run, try run.run())
    }

    /// A request seen during step 3 stops the run after it, with a checkpoint of step 3 (not
    /// one at the end, which it never reaches); the state saved is that of an uninterrupted run's step 3.
    func testAStopRequestEndsTheRunAfterTheStepWithACheckpoint() throws {
        var requests = 0
        let (run, outcome) = try run(steps: 10) {
            requests += 1
            return requests >= 3 ? SIGINT : nil
        }
        let path = directory + "/checkpoints/" + Checkpoint.fileName(step: 3)
        XCTAssertEqual(outcome, .stopped(RunStop(signal: SIGINT, step: 3, checkpoint: path, outputDirectory: directory)))
        XCTAssertEqual(Checkpoint.all(in: directory + "/checkpoints"), [path])
        XCTAssertEqual(EventText.line(.stopped(RunStop(signal: SIGTERM, step: 3, checkpoint: path, outputDirectory: directory))),
                       "gantry: SIGTERM received: every rank finished step 3; writing its checkpoint")
        let uninterrupted = try self.run(steps: 3).0
        XCTAssertEqual(Array(run.trainer.models.generator.parameters.values),
                       Array(uninterrupted.trainer.models.generator.parameters.values))
    }

    /// A loss above --max-loss stops the run in its first step, naming the network.
    func testALossAboveTheLimitStopsTheRun() throws {
        XCTAssertThrowsError(try run(steps: 5, maxLoss: 1e-3)) { error in
            guard case let .lossDiverged(step, network, _, limit) = error as? TrainingError else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 1)
            XCTAssertEqual(network, .discriminator)
            XCTAssertEqual(limit, 1e-3)
        }
        XCTAssertEqual(Checkpoint.all(in: directory + "/checkpoints"), [])
    }

    /// --max-seconds: the step during which the time runs out is the last, with its samples and
    /// checkpoint, and the run ends as finished (the ranks agree through the stop vote).
    func testMaxSecondsEndsTheRunAsFinishedWithACheckpoint() throws {
        let (_, outcome) = try run(steps: 1000, maxSeconds: 1e-9)
        XCTAssertEqual(outcome, .finished(steps: 1))
        XCTAssertEqual(Checkpoint.all(in: directory + "/checkpoints"), [directory + "/checkpoints/" + Checkpoint.fileName(step: 1)])
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/samples/step-00000001.png"))
    }

    /// --eval-every: rank 0 judges a fixed batch of the generator's images every N steps and at
    /// the end; the figures reach metrics.jsonl and train.log.
    func testEvaluationsReachTheMetrics() throws {
        final class MeanPixel: SampleEvaluator {
            var calls = 0
            let sampleCount = 10
            func evaluate(_ images: UnsafeBufferPointer<Float>) throws -> [EvaluationRecord.Figure] {
                calls += 1
                XCTAssertEqual(images.count, 10 * 784)
                return [.init(name: "mean", value: images.reduce(0.0) { $0 + Double($1) } / Double(images.count)),
                        .init(name: "calls", value: Double(calls))]
            }
        }
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = 8
        var options = TrainingOptions(outputDirectory: directory)
        options.length = .steps(5)
        options.evaluateEvery = 2
        options.sampleEvery = 0
        let judge = MeanPixel()
        let run = try TrainingRun(configuration: c, options: options, data: SyntheticData(count: 32, batch: 8),
                                  communicator: SingleProcessCommunicator(), evaluator: judge)
        try run.run()
        XCTAssertEqual(judge.calls, 3, "steps 2, 4 and the last, 5")
        let records = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").filter { $0.contains("\"calls\"") }
        XCTAssertEqual(records.count, 3)
        XCTAssertTrue(records[0].hasPrefix("{\"step\":2,\"mean\":"), String(records[0]))
        XCTAssertTrue(records[2].hasSuffix(",\"calls\":3}"), String(records[2]))
        let log = try String(contentsOfFile: directory + "/train.log", encoding: .utf8)
        XCTAssertTrue(log.contains("eval  step 4  mean "), log)
    }
}
