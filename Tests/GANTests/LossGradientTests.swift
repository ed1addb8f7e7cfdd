import Distributed
import Kernels
import NN
import XCTest
@testable import GAN

/// The whole discriminator and generator losses of each model against central finite
/// differences: checks the loss gradients, the backward pass through D into G, and the wiring
/// of the step (batch norm in training mode, dropout with its masks fixed by the context).
final class LossGradientTests: XCTestCase {
    let batch = 3

    func makeTrainer(_ model: ModelKind) throws -> GANTrainer {
        var c = GANConfiguration.defaults(for: model)
        c.batchSize = batch
        c.labelSmoothing = 0.1
        c.seed = 11
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        // Non-trivial biases, gammas and betas, so their gradients are checked at a generic point.
        for network in [trainer.models.generator, trainer.models.discriminator] {
            for e in network.parameters.entries where !e.name.hasSuffix("kernel") {
                let base: Float = e.name.hasSuffix("gamma") ? 1 : 0
                RandomStream(seed: 3).fillUniform(network.parameters.values.baseAddress! + e.offset, count: e.count,
                                                  low: base - 0.2, high: base + 0.2)
            }
        }
        return trainer
    }

    func images(_ count: Int, seed: UInt64) -> [Float] {
        var x = [Float](repeating: 0, count: count * 784)
        RandomStream(seed: seed).fillUniform(&x, count: x.count, low: -1, high: 1)
        return x
    }

    /// Compares the analytic gradient with central finite differences of `loss` on
    /// `perTensor` parameters of each tensor. `loss` also returns the signs of every LeakyReLU
    /// input: where a perturbation flips one (the stencil straddles a kink), the step shrinks
    /// tenfold, so the difference is always taken where the loss is smooth.
    func compare(_ store: ParameterStore, analytic: [Float], perTensor: Int, loss: () -> (Double, [Bool]),
                 file: StaticString = #filePath, line: UInt = #line) {
        let p = store.values.baseAddress!
        let (_, pattern) = loss()
        var checked = 0
        for e in store.entries {
            for i in stride(from: e.offset, to: e.offset + e.count, by: max(1, e.count / perTensor)) {
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
        XCTAssertGreaterThan(checked, 3 * store.entries.count, file: file, line: line)
    }

    /// For models whose convolutions move tens of thousands of LeakyReLU inputs per weight
    /// (the DCGAN), some input always sits within any usable step of its kink, so single
    /// weights cannot be differenced cleanly. Instead each tensor is checked along one unit
    /// direction v, half the analytic gradient's direction and half a random one: ∇L·v against
    /// (L(θ+hv) - L(θ-hv)) / 2h. The gradient half makes ∇L·v large against Float noise;
    /// the random half makes a wrong gradient unable to agree with itself; and a step of h in
    /// parameter space moves each activation by far less than the typical distance to a kink.
    func compareDirectional(_ store: ParameterStore, analytic: [Float], h: Float, loss: () -> (Double, [Bool]),
                            file: StaticString = #filePath, line: UInt = #line) {
        let p = store.values.baseAddress!
        for (t, e) in store.entries.enumerated() {
            var r = [Float](repeating: 0, count: e.count)
            RandomStream(seed: 77, UInt64(t)).fillNormal(&r, count: e.count)
            let g = Array(analytic[e.offset ..< e.offset + e.count])
            func unit(_ x: [Float]) -> [Double] {
                let norm = x.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                return x.map { Double($0) / max(norm, 1e-30) }
            }
            let gu = unit(g), ru = unit(r)
            let v = unit((0..<e.count).map { Float(gu[$0] + ru[$0]) })
            let expected = (0..<e.count).reduce(0.0) { $0 + Double(g[$1]) * v[$1] }
            let saved = Array(UnsafeBufferPointer(start: p + e.offset, count: e.count))
            var value = [0.0, 0.0]
            for (k, sign) in [1.0, -1.0].enumerated() {
                for i in 0..<e.count { p[e.offset + i] = saved[i] + Float(sign * Double(h) * v[i]) }
                value[k] = loss().0
            }
            for i in 0..<e.count { p[e.offset + i] = saved[i] }
            let numeric = (value[0] - value[1]) / Double(2 * h)
            XCTAssertEqual(expected, numeric, accuracy: 1e-2 * max(abs(numeric), 1e-3),
                           "∇L·v along \(e.name)", file: file, line: line)
        }
    }

    /// Forward through `network` layer by layer as `Sequential.forward` does (one random stream
    /// per layer), collecting the signs of LeakyReLU inputs.
    func forward(_ network: Sequential, _ x: UnsafePointer<Float>, context: ForwardContext,
                 signs: inout [Bool]) -> UnsafePointer<Float> {
        var y = x
        for (i, layer) in network.layers.enumerated() {
            if layer is LeakyReLU {
                for k in 0..<(batch * layer.inputCount) { signs.append(y[k] > 0) }
            }
            var layerContext = context
            layerContext.random = RandomStream(seed: context.random.key, UInt64(i))
            y = layer.forward(y, batch: batch, context: layerContext)
        }
        return y
    }

    func checkDiscriminatorLoss(_ model: ModelKind) throws {
        let trainer = try makeTrainer(model)
        let backend = ReferenceBackend()
        let real = images(batch, seed: 1), fake = images(batch, seed: 2)
        // Two passes with their own dropout masks, fixed by the contexts the trainer gives them.
        let contexts = (trainer.training(0, 1), trainer.training(0, 2))
        var metrics = StepMetrics()
        trainer.discriminatorGradients(real: real, fake: fake, turn: 0, metrics: &metrics)
        let D = trainer.models.discriminator
        let analytic = Array(D.parameters.gradients)

        var scratch = [Float](repeating: 0, count: batch)
        func bce(_ x: [Float], target: Float, _ context: ForwardContext, _ signs: inout [Bool]) -> Double {
            let logits = forward(D, x, context: context, signs: &signs)
            return backend.binaryCrossEntropyWithLogits(logits, targets: [Float](repeating: target, count: batch),
                                                        count: batch, scale: 1, gradient: &scratch) / Double(batch)
        }
        let loss = { () -> (Double, [Bool]) in
            var signs: [Bool] = []
            return (bce(real, target: 0.9, contexts.0, &signs) + bce(fake, target: 0, contexts.1, &signs), signs)
        }
        XCTAssertEqual(metrics.discriminatorLoss, loss().0, accuracy: 1e-5)
        if model == .mlp {
            compare(D.parameters, analytic: analytic, perTensor: 40, loss: loss)
        } else {
            compareDirectional(D.parameters, analytic: analytic, h: 1e-3, loss: loss)
        }
    }

    func checkGeneratorLoss(_ model: ModelKind) throws {
        let trainer = try makeTrainer(model)
        let backend = ReferenceBackend()
        let G = trainer.models.generator, D = trainer.models.discriminator
        var z = [Float](repeating: 0, count: batch * 100)
        RandomStream(seed: 5).fillNormal(&z, count: z.count)
        let context = ForwardContext(training: true, random: RandomStream(seed: 4))
        let dBefore = Array(D.parameters.gradients)

        let logits = D.forward(G.forward(z, batch: batch, context: context), batch: batch, context: context)
        let reported = trainer.generatorGradients(outputs: logits)
        let analytic = Array(G.parameters.gradients)
        XCTAssertEqual(Array(D.parameters.gradients), dBefore, "the generator's pass must not touch D's gradients")

        var scratch = [Float](repeating: 0, count: batch)
        let ones = [Float](repeating: 1, count: batch)
        let loss = { () -> (Double, [Bool]) in
            var signs: [Bool] = []
            let images = self.forward(G, z, context: context, signs: &signs)
            let l = self.forward(D, images, context: context, signs: &signs)
            return (backend.binaryCrossEntropyWithLogits(l, targets: ones, count: self.batch, scale: 1,
                                                         gradient: &scratch) / Double(self.batch), signs)
        }
        XCTAssertEqual(reported, loss().0, accuracy: 1e-5)
        if model == .mlp {
            compare(G.parameters, analytic: analytic, perTensor: 40, loss: loss)
        } else {
            compareDirectional(G.parameters, analytic: analytic, h: 1e-3, loss: loss)
        }
    }

    func testMLPDiscriminatorLoss() throws { try checkDiscriminatorLoss(.mlp) }
    func testMLPGeneratorLossThroughDiscriminator() throws { try checkGeneratorLoss(.mlp) }
    func testDCGANDiscriminatorLoss() throws { try checkDiscriminatorLoss(.dcgan) }
    func testDCGANGeneratorLossThroughDiscriminator() throws { try checkGeneratorLoss(.dcgan) }
}
