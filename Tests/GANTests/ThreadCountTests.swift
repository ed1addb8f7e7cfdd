import Backends
import Distributed
import FileFormats
import Foundation
import Kernels
import XCTest
@testable import GAN

/// Training does not depend on the number of threads inside a rank: a few steps of each model
/// on 1, 2 and 3 threads leave bit-identical checkpoints (parameters, batch norm statistics,
/// Adam moments). The backends split every kernel however small (`.always`), so the splits
/// of the GEMM and of the elementwise kernels all run on these small batches; one run with
/// the measured thresholds checks the mix of split and unsplit kernels of a real run.
final class ThreadCountTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-threads-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Trains `steps` steps on `backend`; returns the final checkpoint's tensors by name.
    func train(_ model: ModelKind, batch: Int, steps: Int, backend: Backend, out: String) throws -> [String: [Float]] {
        var c = GANConfiguration.defaults(for: model)
        c.batchSize = batch
        c.seed = 5
        c.labelSmoothing = 0.1
        var options = TrainingOptions(outputDirectory: out)
        options.length = .steps(steps)
        options.logEvery = 1
        options.sampleEvery = 0
        options.checkpointEvery = 0
        options.sampleCount = 4
        let run = try TrainingRun(configuration: c, options: options, data: SyntheticData(count: 4 * batch, batch: batch),
                                  communicator: SingleProcessCommunicator(), backend: backend)
        try run.run()
        let file = try SafetensorsFile(path: options.checkpointDirectory + "/" + Checkpoint.fileName(step: steps))
        return try Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, try file.tensor(named: $0.name).values) })
    }

    func checkThreadCountsAgree(_ model: ModelKind, batch: Int, steps: Int) throws {
        let isa = try Backends.choose()
        let single = try train(model, batch: batch, steps: steps, backend: try Backends.make(isa), out: directory + "/1")
        XCTAssert(single.keys.contains("generator.adam.m") && single.count > 10, "\(single.keys.sorted())")
        let runs: [(String, Backend)] = [
            ("2 threads", try Backends.make(isa, threads: 2, thresholds: .always)),
            ("3 threads", try Backends.make(isa, threads: 3, thresholds: .always)),
            ("2 threads, measured thresholds", try Backends.make(isa, threads: 2)),
        ]
        for (index, (name, backend)) in runs.enumerated() {
            let tensors = try train(model, batch: batch, steps: steps, backend: backend, out: directory + "/\(index)")
            XCTAssertEqual(tensors.keys.sorted(), single.keys.sorted())
            for (tensor, values) in single where tensors[tensor] != values {
                XCTFail("[\(isa) \(model) \(name)] \(tensor) differs from 1 thread's")
            }
        }
    }

    func testMLPTrainsBitIdenticallyOnOneTwoAndThreeThreads() throws {
        try checkThreadCountsAgree(.mlp, batch: 16, steps: 4)
    }

    func testDCGANTrainsBitIdenticallyOnOneTwoAndThreeThreads() throws {
        try checkThreadCountsAgree(.dcgan, batch: 4, steps: 3)
    }
}
