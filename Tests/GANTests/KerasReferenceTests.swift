import Distributed
import Foundation
import Kernels
import NN
import XCTest
@testable import GAN

/// Gantry's DCGAN step against TensorFlow/Keras 2.21 running the seed's own step
/// (`tf_seed_gan_train.py`: simultaneous update, BCE on logits, Keras Adam with Gantry's DCGAN
/// defaults, lr 1e-4 and β₁ 0.5) from the same initial parameters, images and noise, with
/// dropout 0 so that no masks need matching.
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
        (0.688107, 1.365374),
        (0.674967, 1.381366),
    ]

    /// Keras's change of each tensor over the run: its L2 norm, and its dot product with a fixed
    /// direction (uniform in [-1, 1) from RandomStream(seed: 99), one value per element).
    static let changes: [String: (norm: Double, projection: Double)] = [
        "generator.0.kernel": (2.365458e-01, -2.160795e-02),
        "generator.1.gamma": (3.156562e-02, 1.602865e-02),
        "generator.1.beta": (3.775439e-02, 3.123217e-02),
        "generator.1.moving_mean": (5.786876e-02, 1.798037e-02),
        "generator.1.moving_variance": (4.348044e+00, -1.393258e+00),
        "generator.4.kernel": (2.280228e-01, 9.329510e-03),
        "generator.5.gamma": (3.375010e-03, 2.943639e-03),
        "generator.5.beta": (3.953104e-03, 1.959003e-03),
        "generator.5.moving_mean": (8.617744e-02, -2.746117e-02),
        "generator.5.moving_variance": (2.608789e-01, -1.980473e-01),
        "generator.7.kernel": (1.326746e-01, 3.630147e-02),
        "generator.8.gamma": (2.738517e-03, -9.210633e-04),
        "generator.8.beta": (3.065828e-03, -3.788538e-03),
        "generator.8.moving_mean": (2.166114e-02, 3.046703e-03),
        "generator.8.moving_variance": (2.664350e-01, -4.431802e-03),
        "generator.10.kernel": (1.447150e-02, -1.274553e-03),
        "generator.10.bias": (4.278018e-04, 2.745738e-04),
        "discriminator.0.kernel": (1.076468e-02, 2.137031e-03),
        "discriminator.0.bias": (2.062437e-03, -1.691318e-03),
        "discriminator.3.kernel": (1.197125e-01, 8.894978e-02),
        "discriminator.3.bias": (2.808048e-03, 1.117646e-03),
        "discriminator.7.kernel": (2.298773e-02, 1.215147e-03),
        "discriminator.7.bias": (4.339274e-04, -2.785054e-04),
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
