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
            var stepsPerEpoch: Int { clean.stepsPerEpoch }
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
