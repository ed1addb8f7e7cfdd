import Distributed
import Kernels
import NN
import XCTest
@testable import GAN

/// The whole discriminator and generator losses against central finite differences: checks
/// the loss gradients, the backward pass through D into G, and the wiring of the step.
final class LossGradientTests: XCTestCase {
    func makeTrainer(batch: Int = 3, smoothing: Float = 0.1) throws -> GANTrainer {
        var c = GANConfiguration.defaults(for: .mlp)
        c.batchSize = batch
        c.labelSmoothing = smoothing
        c.seed = 11
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        // Non-zero biases so their gradients are checked at a generic point.
        for network in [trainer.models.generator, trainer.models.discriminator] {
            for e in network.parameters.entries where e.name.hasSuffix("bias") {
                RandomStream(seed: 3).fillUniform(network.parameters.values.baseAddress! + e.offset, count: e.count,
                                                  low: -0.2, high: 0.2)
            }
        }
        return trainer
    }

    func images(_ count: Int, seed: UInt64) -> [Float] {
        var x = [Float](repeating: 0, count: count * 784)
        RandomStream(seed: seed).fillUniform(&x, count: x.count, low: -1, high: 1)
        return x
    }

    /// Compares the analytic gradient with central finite differences of `loss` on ~40
    /// parameters of each tensor. `loss` also returns the signs of every LeakyReLU input: where
    /// a perturbation flips one (the stencil straddles a kink), the step shrinks tenfold, so the
    /// difference is always taken where the loss is smooth.
    func compare(_ store: ParameterStore, analytic: [Float], loss: () -> (Double, [Bool]),
                 file: StaticString = #filePath, line: UInt = #line) {
        let p = store.values.baseAddress!
        let (_, pattern) = loss()
        var checked = 0
        for e in store.entries {
            for i in stride(from: e.offset, to: e.offset + e.count, by: max(1, e.count / 40)) {
                let saved = p[i]
                var h: Float = 5e-3, numeric = 0.0, smooth = false
                while !smooth && h >= 5e-5 {
                    p[i] = saved + h; let (plus, a) = loss()
                    p[i] = saved - h; let (minus, b) = loss()
                    p[i] = saved
                    numeric = (plus - minus) / Double(2 * h)
                    smooth = a == pattern && b == pattern
                    h /= 10
                }
                XCTAssertTrue(smooth, "\(e.name)[\(i - e.offset)] sits on a kink", file: file, line: line)
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-3 * max(0.05, abs(numeric)),
                               "\(e.name)[\(i - e.offset)]", file: file, line: line)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 100, file: file, line: line)
    }

    /// Forward through `network` layer by layer, collecting the signs of LeakyReLU inputs.
    func forward(_ network: Sequential, _ x: UnsafePointer<Float>, batch: Int, signs: inout [Bool]) -> UnsafePointer<Float> {
        var y = x
        for layer in network.layers {
            if layer is LeakyReLU {
                for k in 0..<(batch * layer.inputCount) { signs.append(y[k] > 0) }
            }
            y = layer.forward(y, batch: batch, context: ForwardContext(training: true))
        }
        return y
    }

    func testDiscriminatorLossGradient() throws {
        let trainer = try makeTrainer()
        let backend = ReferenceBackend()
        let real = images(3, seed: 1), fake = images(3, seed: 2)
        let context = ForwardContext(training: true)
        var metrics = StepMetrics()
        trainer.discriminatorGradients(real: real, fake: fake, context: context, metrics: &metrics)
        let D = trainer.models.discriminator
        let analytic = Array(D.parameters.gradients)

        var scratch = [Float](repeating: 0, count: 3)
        func bce(_ x: [Float], target: Float, _ signs: inout [Bool]) -> Double {
            let logits = forward(D, x, batch: 3, signs: &signs)
            return backend.binaryCrossEntropyWithLogits(logits, targets: [Float](repeating: target, count: 3), count: 3,
                                                        scale: 1, gradient: &scratch) / 3
        }
        let loss = { () -> (Double, [Bool]) in
            var signs: [Bool] = []
            return (bce(real, target: 0.9, &signs) + bce(fake, target: 0, &signs), signs)
        }
        XCTAssertEqual(metrics.discriminatorLoss, loss().0, accuracy: 1e-5)
        compare(D.parameters, analytic: analytic, loss: loss)
    }

    func testGeneratorLossGradientThroughDiscriminator() throws {
        let trainer = try makeTrainer()
        let backend = ReferenceBackend()
        let G = trainer.models.generator, D = trainer.models.discriminator
        var z = [Float](repeating: 0, count: 3 * 100)
        RandomStream(seed: 5).fillNormal(&z, count: z.count)
        let context = ForwardContext(training: true)
        let dBefore = Array(D.parameters.gradients)

        let logits = D.forward(G.forward(z, batch: 3, context: context), batch: 3, context: context)
        let reported = trainer.generatorGradients(logits: logits)
        let analytic = Array(G.parameters.gradients)
        XCTAssertEqual(Array(D.parameters.gradients), dBefore, "the generator's pass must not touch D's gradients")

        var scratch = [Float](repeating: 0, count: 3)
        let loss = { () -> (Double, [Bool]) in
            var signs: [Bool] = []
            let l = self.forward(D, self.forward(G, z, batch: 3, signs: &signs), batch: 3, signs: &signs)
            return (backend.binaryCrossEntropyWithLogits(l, targets: [1, 1, 1], count: 3, scale: 1, gradient: &scratch) / 3, signs)
        }
        XCTAssertEqual(reported, loss().0, accuracy: 1e-5)
        compare(G.parameters, analytic: analytic, loss: loss)
    }
}
