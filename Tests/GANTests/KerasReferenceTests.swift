import Distributed
import Foundation
import Kernels
import NN
import XCTest
@testable import GAN

/// Gantry's DCGAN step against TensorFlow/Keras 2.21 running the seed's own step
/// (`tf_seed_gan_train.py`: simultaneous update, BCE on logits, Keras Adam 1e-4) from the same
/// initial parameters, images and noise, with dropout 0 so that no masks need matching.
///
/// The finite-difference tests show that Gantry's gradients are those of Gantry's losses; this
/// shows that the losses, batch norm, the layer geometry and Adam are the tutorial's. The
/// expected figures were printed by `KerasReference/dcgan_steps.py` (see its header to
/// regenerate them after a change of initialization or random streams).
final class KerasReferenceTests: XCTestCase {
    static let batch = 16, steps = 4

    /// Keras's losses after each step (printed by dcgan_steps.py).
    static let losses: [(generator: Double, discriminator: Double)] = [
        (0.702129, 1.354385),
        (0.690383, 1.372745),
        (0.688004, 1.365228),
        (0.675219, 1.381161),
    ]

    /// Keras's change of each tensor over the run: its L2 norm, and its dot product with a fixed
    /// direction (uniform in [-1, 1) from RandomStream(seed: 99), one value per element).
    static let changes: [String: (norm: Double, projection: Double)] = [
        "generator.0.kernel": (2.589496e-01, -3.804148e-02),
        "generator.1.gamma": (3.238964e-02, 1.745297e-02),
        "generator.1.beta": (3.809234e-02, 3.077865e-02),
        "generator.1.moving_mean": (5.786902e-02, 1.799168e-02),
        "generator.1.moving_variance": (4.348043e+00, -1.393227e+00),
        "generator.4.kernel": (2.398450e-01, 4.516871e-02),
        "generator.5.gamma": (3.418494e-03, 3.235223e-03),
        "generator.5.beta": (3.895264e-03, 1.942222e-03),
        "generator.5.moving_mean": (8.616463e-02, -2.699024e-02),
        "generator.5.moving_variance": (2.608646e-01, -1.980430e-01),
        "generator.7.kernel": (1.356396e-01, 3.810422e-02),
        "generator.8.gamma": (2.623109e-03, -5.981372e-04),
        "generator.8.beta": (2.928506e-03, -3.529924e-03),
        "generator.8.moving_mean": (2.166742e-02, 3.073386e-03),
        "generator.8.moving_variance": (2.664279e-01, -4.470502e-03),
        "generator.10.kernel": (1.389709e-02, -3.196785e-03),
        "generator.10.bias": (3.982159e-04, 2.555848e-04),
        "discriminator.0.kernel": (1.122449e-02, -3.216675e-04),
        "discriminator.0.bias": (2.160141e-03, -1.387713e-03),
        "discriminator.3.kernel": (1.254341e-01, 8.401983e-02),
        "discriminator.3.bias": (2.952735e-03, 6.661715e-04),
        "discriminator.7.kernel": (2.371057e-02, 2.695150e-03),
        "discriminator.7.bias": (3.945178e-04, -2.532113e-04),
    ]

    func testDCGANStepsMatchKeras() throws {
        var c = GANConfiguration.defaults(for: .dcgan)
        c.batchSize = Self.batch
        c.dropoutRate = 0
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        var real = [Float](repeating: 0, count: Self.steps * Self.batch * c.pixelCount)
        RandomStream(seed: 7).fillUniform(&real, count: real.count, low: -1, high: 1)

        if let folder = ProcessInfo.processInfo.environment["GANTRY_KERAS_REFERENCE_DIR"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Checkpoint.save(trainer, step: 0, to: folder + "/initial.safetensors")
            try real.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: folder + "/real.bin")) }
        }
        let before = snapshot(trainer)
        for s in 0..<Self.steps {
            let metrics = try real.withUnsafeBufferPointer {
                try trainer.step(real: $0.baseAddress! + s * Self.batch * c.pixelCount, step: s)
            }
            XCTAssertEqual(metrics.generatorLoss, Self.losses[s].generator, accuracy: 1e-4, "G loss, step \(s + 1)")
            XCTAssertEqual(metrics.discriminatorLoss, Self.losses[s].discriminator, accuracy: 1e-4, "D loss, step \(s + 1)")
        }
        let after = snapshot(trainer)
        XCTAssertEqual(Set(after.keys), Set(Self.changes.keys))
        let direction = { (count: Int) -> [Double] in
            let stream = RandomStream(seed: 99)
            return (0..<count).map { 2 * Double(stream.unitFloat(at: UInt64($0))) - 1 }
        }
        for (name, values) in after.sorted(by: { $0.key < $1.key }) {
            guard let expected = Self.changes[name] else { continue }
            let change = zip(values, before[name]!).map { Double($0) - Double($1) }
            let norm = change.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let projection = zip(change, direction(change.count)).reduce(0) { $0 + $1.0 * $1.1 }
            // Float rounding differs between the two (oneDNN's summation orders against ours),
            // and Adam's first steps amplify it where gradients are tiny: 0.5 % of the change.
            XCTAssertEqual(norm, expected.norm, accuracy: 5e-3 * expected.norm, "\(name): norm of the change")
            XCTAssertEqual(projection, expected.projection, accuracy: 5e-3 * expected.norm, "\(name): projection")
        }
    }

    /// Every parameter and state tensor of both networks, by checkpoint name.
    private func snapshot(_ trainer: GANTrainer) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for (network, sequential, _) in trainer.namedNetworks {
            for store in [sequential.parameters, sequential.state] {
                for e in store.entries {
                    out["\(network).\(e.name)"] = Array(store.values[e.offset ..< e.offset + e.count])
                }
            }
        }
        return out
    }
}
