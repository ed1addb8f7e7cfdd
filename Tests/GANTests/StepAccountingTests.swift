import Distributed
import Kernels
import NN
import XCTest
@testable import GAN

/// What `gantry bench` builds on: the step's FLOPs counted by hand, the passes a step makes
/// against the ones the count sums, and the phases the trainer marks for an observer.
final class StepAccountingTests: XCTestCase {
    // MARK: FLOPs by hand

    func testMLPStepFLOPsByHand() throws {
        let b = 64
        // G: Dense 100 -> 128, LeakyReLU, Dense 128 -> 784, tanh. D: Dense 784 -> 128, LeakyReLU, Dense 128 -> 1.
        let g0 = 2 * b * 100 * 128, g2 = 2 * b * 128 * 784, d0 = 2 * b * 784 * 128, d2 = 2 * b * 128 * 1
        XCTAssertEqual([g0, g2, d0, d2], [1_638_400, 12_845_056, 12_845_056, 16_384])
        let flops = try makeTrainer(.mlp, batch: b).flopsPerStep  // alternating, the MLP's scheme
        // G forward twice (the D step's fakes, the G step's fresh batch), D forward three times.
        XCTAssertEqual(flops.forward, 2 * (g0 + g2) + 3 * (d0 + d2))
        // D backward twice into its parameters (its first layer needs no input gradient), once into
        // G's images only; G backward into its parameters (again none for its first layer's input).
        XCTAssertEqual(flops.backward, 2 * (d0 + 2 * d2) + (d0 + d2) + (g0 + 2 * g2))
        XCTAssertEqual(flops.total, 133_496_832)
        XCTAssertEqual(flops.generator.map(\.total), [2 * g0 + g0, 0, 2 * g2 + 2 * g2, 0])
        XCTAssertEqual(flops.discriminator.map(\.total), [3 * d0 + 2 * d0 + d0, 0, 3 * d2 + 4 * d2 + d2])
    }

    func testDCGANStepFLOPsByHand() throws {
        let b = 64
        // Convolutions: batch x (output pixel, tap) pairs inside the image x input x output channels.
        // 5x5 taps, "same": 7 -> 7 (stride 1) has 3+4+5+5+5+4+3 = 29 taps inside per row of
        // output pixels; 14 -> 7 (stride 2) 4+5·5+3 = 32; 28 -> 14 (stride 2) 4+12·5+3 = 67.
        let dense = 2 * b * 100 * 7 * 7 * 256
        let convT1 = 2 * b * (29 * 29) * 128 * 256  // 7x7x256 -> 7x7x128: its adjoint conv maps 7x7x128 -> 7x7x256
        let convT2 = 2 * b * (32 * 32) * 64 * 128  // 7x7x128 -> 14x14x64
        let convT3 = 2 * b * (67 * 67) * 1 * 64  // 14x14x64 -> 28x28x1
        let conv1 = 2 * b * (67 * 67) * 1 * 64  // 28x28x1 -> 14x14x64
        let conv2 = 2 * b * (32 * 32) * 64 * 128  // 14x14x64 -> 7x7x128
        let logit = 2 * b * 6272
        XCTAssertEqual([dense, convT1, convT2, convT3, conv1, conv2, logit],
                       [160_563_200, 3_527_409_664, 1_073_741_824, 36_773_888, 36_773_888, 1_073_741_824, 802_816])
        let g = dense + convT1 + convT2 + convT3, d = conv1 + conv2 + logit

        // Simultaneous (the DCGAN's scheme): G forward once, D forward on real and fake.
        let simultaneous = try makeTrainer(.dcgan, batch: b).flopsPerStep
        XCTAssertEqual(simultaneous.forward, g + 2 * d)
        XCTAssertEqual(simultaneous.backward,
                       2 * (conv1 + 2 * conv2 + 2 * logit) + d + (dense + 2 * (convT1 + convT2 + convT3)))
        XCTAssertEqual(simultaneous.total, 21_940_584_448)

        // Alternating adds G's and D's forward passes on fresh noise; the backward passes are the same.
        let alternating = try makeTrainer(.dcgan, batch: b, scheme: .alternating).flopsPerStep
        XCTAssertEqual(alternating.forward - simultaneous.forward, g + d)
        XCTAssertEqual(alternating.backward, simultaneous.backward)
    }

    /// The count sums `passesPerStep`; a real step's layers, observed, must make exactly those passes.
    func testCountedPassesAreTheStepsPasses() throws {
        for (model, batch) in [(ModelKind.mlp, 4), (.dcgan, 2)] {
            for scheme in UpdateScheme.allCases {
                let trainer = try makeTrainer(model, batch: batch, scheme: scheme)
                let counters = NetworkRole.allCases.map { FLOPCounter(trainer.models[$0], batch: batch) }
                for counter in counters { counter.network.observer = counter }
                var real = realImages(trainer)
                _ = try trainer.step(real: &real, step: 0)
                let expected = trainer.flopsPerStep
                XCTAssertEqual(counters[0].flops, expected.generator, "\(model) \(scheme) G")
                XCTAssertEqual(counters[1].flops, expected.discriminator, "\(model) \(scheme) D")
            }
        }
        // The other procedures: n_critic updates, the penalty's passes, D's split update.
        var procedures: [GANConfiguration] = []
        for loss in [LossKind.wgan, .wganGP] {
            var c = GANConfiguration.defaults(for: .mlp, loss: loss)
            c.batchSize = 4
            procedures.append(c)
        }
        var split = GANConfiguration.defaults(for: .mlp)
        split.batchSize = 4
        split.discriminatorUpdate = .split
        procedures.append(split)
        for model in [ModelKind.mlp, .dcgan] {
            var same = GANConfiguration.defaults(for: model)
            same.batchSize = 2
            same.updateScheme = .alternating
            same.generatorNoise = .same
            procedures.append(same)
        }
        var gp = GANConfiguration.defaults(for: .dcganGP, loss: .wganGP)
        gp.batchSize = 2
        gp.criticSteps = 2
        procedures.append(gp)
        for c in procedures {
            let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
            try trainer.initializeParameters()
            let counters = NetworkRole.allCases.map { FLOPCounter(trainer.models[$0], batch: c.batchSize) }
            for counter in counters { counter.network.observer = counter }
            var real = [Float](repeating: 0.25, count: c.criticSteps * c.batchSize * c.pixelCount)
            _ = try trainer.step(real: &real, step: 0)
            let expected = trainer.flopsPerStep, name = "\(c.model.rawValue) \(c.loss.rawValue) \(c.discriminatorUpdate.rawValue)"
            XCTAssertEqual(counters[0].flops, expected.generator, name + " G")
            XCTAssertEqual(counters[1].flops, expected.discriminator, name + " D")
        }
    }

    /// On the same z, the generator's turn reuses G's pass of the critic update: the parameters
    /// come out bit for bit as with the pass run again (the DCGAN's batch norm statistics, which
    /// training-mode passes do not read, move once a step instead of twice).
    func testTheGeneratorTurnOnTheSameZReusesGsPass() throws {
        for model in [ModelKind.mlp, .dcgan] {
            var c = GANConfiguration.defaults(for: model)
            c.batchSize = 4
            c.updateScheme = .alternating
            c.generatorNoise = .same
            c.seed = 2
            let reusing = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
            let recomputing = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
            XCTAssertTrue(reusing.reusesGeneratorForward)
            recomputing.reusesGeneratorForward = false
            let data = SyntheticData(count: 16, batch: 4)
            var losses: [[Double]] = []
            for trainer in [reusing, recomputing] {
                try trainer.initializeParameters()
                losses.append(try (0 ..< 3).map { try trainer.step(data: data, step: $0).generatorLoss })
            }
            XCTAssertEqual(losses[0], losses[1], "\(model)")
            for role in NetworkRole.allCases {
                XCTAssertEqual(Array(reusing.models[role].parameters.values), Array(recomputing.models[role].parameters.values),
                               "\(model) \(role)")
            }
        }
        var fresh = GANConfiguration.defaults(for: .dcgan)
        fresh.updateScheme = .alternating
        XCTAssertFalse(GANTrainer(configuration: fresh, communicator: SingleProcessCommunicator()).reusesGeneratorForward)
    }

    // MARK: Phases

    func testObserverSeesEachSchemesPhases() throws {
        let d = ["backward", "forward", "backward", "forward", "backward"]  // zero D's gradients, then real and fake
        let expected: [UpdateScheme: [String]] = [
            .simultaneous: ["forward"] + d + ["forward", "backward", "allReduce", "optimizer", "allReduce", "optimizer"],
            .alternating: ["forward"] + d + ["allReduce", "optimizer", "forward", "forward", "backward", "allReduce", "optimizer"],
        ]
        for scheme in UpdateScheme.allCases {
            let trainer = try makeTrainer(.mlp, batch: 4, scheme: scheme)
            let recorder = PhaseRecorder()
            trainer.observer = recorder
            var real = realImages(trainer)
            for step in 0..<2 {
                recorder.phases = []
                _ = try trainer.step(real: &real, step: step)
                XCTAssertEqual(recorder.phases.map(\.rawValue), expected[scheme], "\(scheme)")
                XCTAssertNil(recorder.open, "\(scheme): a phase was left open")
                XCTAssertFalse(recorder.misnested, "\(scheme): phases nested or ended out of order")
            }
        }
    }
}

/// Adds each layer pass's FLOPs as the network runs it.
final class FLOPCounter: LayerObserver {
    let network: Sequential
    let batch: Int
    var flops: [LayerFLOPs]

    init(_ network: Sequential, batch: Int) {
        self.network = network
        self.batch = batch
        flops = Array(repeating: LayerFLOPs(), count: network.layers.count)
    }

    func begin(layer: Int, _ pass: LayerPass) {
        let count = network.layers[layer].flops(batch: batch, pass)
        if pass == .forward { flops[layer].forward += count } else { flops[layer].backward += count }
    }

    func end(layer: Int, _ pass: LayerPass) {}
}

/// The phases in the order they begin, and whether each ended before the next began.
final class PhaseRecorder: StepObserver {
    var phases: [StepPhase] = []
    var open: StepPhase?
    var misnested = false

    func begin(_ phase: StepPhase) {
        if open != nil { misnested = true }
        open = phase
        phases.append(phase)
    }

    func end(_ phase: StepPhase) {
        if open != phase { misnested = true }
        open = nil
    }
}

/// A trainer of `model` at `batch`, initialized, on one process.
func makeTrainer(_ model: ModelKind, batch: Int, scheme: UpdateScheme? = nil) throws -> GANTrainer {
    var c = GANConfiguration.defaults(for: model)
    c.batchSize = batch
    if let scheme { c.updateScheme = scheme }
    let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
    try trainer.initializeParameters()
    return trainer
}

/// A batch of stand-in real images for `trainer`.
func realImages(_ trainer: GANTrainer) -> [Float] {
    var x = [Float](repeating: 0, count: trainer.configuration.batchSize * trainer.configuration.pixelCount)
    RandomStream(seed: 5).fillUniform(&x, count: x.count, low: -1, high: 1)
    return x
}
