import Backends
import Distributed
import XCTest
@testable import GAN

/// A few steps of `Benchmark.run` on each model: positive figures that add up.
final class BenchmarkTests: XCTestCase {
    func testShortBenchmarksGiveSaneFigures() throws {
        for (model, batch) in [(ModelKind.mlp, 8), (.dcgan, 2)] {
            var c = GANConfiguration.defaults(for: model)
            c.batchSize = batch
            var options = BenchmarkOptions(configuration: c, instructionSet: try Backends.choose())
            options.steps = 3
            options.warmup = 1
            options.perLayer = true
            options.peakSeconds = 0.02
            let r = try Benchmark.run(options, communicator: SingleProcessCommunicator())
            let name = "\(model)"
            XCTAssertGreaterThan(r.stepSeconds, 0, name)
            XCTAssertEqual(r.imagesPerSecond, Double(batch) / r.stepSeconds, accuracy: 1e-9 * r.imagesPerSecond, name)
            for phase in [StepPhase.forward, .backward, .optimizer] { XCTAssertGreaterThan(r.phaseSeconds[phase] ?? 0, 0, "\(name) \(phase)") }
            XCTAssertGreaterThanOrEqual(r.phaseSeconds[.allReduce] ?? -1, 0, name)
            XCTAssertLessThanOrEqual(r.phaseSeconds.values.reduce(0, +), r.stepSeconds, name)
            XCTAssertGreaterThanOrEqual(r.otherSeconds, 0, name)
            XCTAssertEqual(r.flops, try makeTrainer(model, batch: batch).flopsPerStep, name)
            XCTAssertGreaterThan(r.gflops, 0, name)
            XCTAssertGreaterThan(r.peakGFLOPS, 1, name)
            XCTAssertGreaterThan(r.peakShare, 0, name)
            XCTAssertGreaterThan(r.peakResidentBytes, 1 << 20, name)
            // Every layer, timed inside the forward and backward phases.
            let layers = (try makeTrainer(model, batch: batch)).models
            XCTAssertEqual(r.layers.count, layers.generator.layers.count + layers.discriminator.layers.count, name)
            let layerSeconds = r.layers.reduce(0) { $0 + $1.forwardSeconds + $1.backwardSeconds }
            XCTAssertGreaterThan(layerSeconds, 0, name)
            XCTAssertLessThanOrEqual(layerSeconds, r.phaseSeconds[.forward]! + r.phaseSeconds[.backward]!, name)
            XCTAssertEqual(r.layers.reduce(0) { $0 + $1.flops.total }, r.flops.total, name)
        }
    }
}
