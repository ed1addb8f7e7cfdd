import Distributed
import Kernels
import NN
import Optim
import XCTest
@testable import GAN

/// The Wasserstein losses: their terms, weight clipping, and the critic's whole WGAN-GP
/// gradient (penalty included, through double backpropagation) against finite differences.
final class WassersteinTests: XCTestCase {
    func testLossTermsAndTheirGradients() {
        let loss = WassersteinLoss(maxBatch: 4, clipValue: nil, backend: ReferenceBackend())
        let values: [Float] = [1, 2, 3, 6]
        var gradient = [Float](repeating: 0, count: 4)
        XCTAssertEqual(loss.discriminator(values, on: .real, count: 4, gradient: &gradient), -3)
        XCTAssertEqual(gradient, [-0.25, -0.25, -0.25, -0.25])
        XCTAssertEqual(loss.discriminator(values, on: .fake, count: 4, gradient: &gradient), 3)
        XCTAssertEqual(gradient, [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(loss.generator(values, count: 4, gradient: &gradient), -3)
        XCTAssertEqual(gradient, [-0.25, -0.25, -0.25, -0.25])
        XCTAssertEqual(loss.score(values, count: 4), 3)
    }

    /// WGAN: after every critic update each critic parameter lies in [-c, c], and some sit on
    /// the bounds (the clip did something).
    func testClippingBoundsTheCriticAfterEachUpdate() throws {
        var c = GANConfiguration.defaults(for: .mlp, loss: .wgan)
        c.batchSize = 8
        c.clipValue = 0.005
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        let real = [Float](repeating: 0.5, count: c.criticSteps * 8 * 784)
        _ = try trainer.step(real: real, step: 0)
        let values = Array(trainer.models.discriminator.parameters.values)
        XCTAssertLessThanOrEqual(values.map(abs).max()!, 0.005)
        XCTAssertGreaterThan(values.filter { abs($0) == 0.005 }.count, 100)
        XCTAssertEqual(trainer.discriminatorOptimizer.stepCount, 5, "n_critic 5: five critic updates per step")
        XCTAssertEqual(trainer.generatorOptimizer.stepCount, 1)
    }

    /// The critic's gradient of mean D(G(z)) − mean D(x) + λ·mean (‖∇D(x̂)‖ − 1)² with respect
    /// to each of its parameters, against central differences of that loss recomputed from
    /// scratch (x̂ mixed with the same ε). Steps whose stencil crosses a LeakyReLU kink show a
    /// second difference far above the quadratic's and are left out (counted, few).
    func testGradientPenaltyGradientMatchesFiniteDifferences() throws {
        var c = GANConfiguration.defaults(for: .mlp, loss: .wganGP)
        c.batchSize = 3
        c.seed = 5
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        let D = trainer.models.discriminator
        var real = [Float](repeating: 0, count: 3 * 784), fake = real
        RandomStream(seed: 1).fillUniform(&real, count: real.count, low: -1, high: 1)
        RandomStream(seed: 2).fillUniform(&fake, count: fake.count, low: -1, high: 1)
        var metrics = StepMetrics()
        trainer.discriminatorGradients(real: real, fake: fake, turn: 0, metrics: &metrics)
        let analytic = Array(D.parameters.gradients)
        XCTAssertGreaterThan(metrics.penalty, 0)

        var epsilon = [Float](repeating: 0, count: 3)
        RandomStream(seed: c.seed, RandomPurpose.penaltyMix.rawValue, 0).fillUniform(&epsilon, count: 3, low: 0, high: 1,
                                                                                      first: 0)
        var mixed = [Float](repeating: 0, count: 3 * 784)
        for i in mixed.indices {
            let e: Float = epsilon[i / 784]
            mixed[i] = e * real[i] + (1 - e) * fake[i]
        }
        let context = ForwardContext(training: true)
        func loss() -> Double {
            func mean(_ x: [Float]) -> Double {
                let y = D.forward(x, batch: 3, context: context)
                return (0 ..< 3).reduce(0.0) { $0 + Double(y[$1]) } / 3
            }
            var value = mean(fake) - mean(real)
            _ = D.forward(mixed, batch: 3, context: context)
            let g = D.inputGradientForDoubleBackward(batch: 3)
            for b in 0 ..< 3 {
                let norm = (b * 784 ..< (b + 1) * 784).reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }.squareRoot()
                value += 10 * (norm - 1) * (norm - 1) / 3
            }
            return value
        }
        XCTAssertEqual(loss(), metrics.discriminatorLoss, accuracy: 1e-4)
        let p = D.parameters.values.baseAddress!, h: Float = 1e-3, base = loss()
        var compared = 0, kinked = 0
        for e in D.parameters.entries {
            for i in stride(from: e.offset, to: e.offset + e.count, by: max(1, e.count / 60)) {
                let saved = p[i]
                p[i] = saved + h; let plus = loss()
                p[i] = saved - h; let minus = loss()
                p[i] = saved
                if abs(plus - 2 * base + minus) > 1e-4 { kinked += 1; continue }
                let numeric = (plus - minus) / Double(2 * h)
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 5e-3 * max(1, abs(numeric)), "\(e.name)[\(i - e.offset)]")
                compared += 1
            }
        }
        XCTAssertGreaterThan(compared, 150)
        XCTAssertLessThan(kinked, compared / 10)
    }

    func testConflictingSettingsAreRefusedInOneLine() {
        func message(_ edit: (inout GANConfiguration) -> Void) -> String {
            var c = GANConfiguration.defaults(for: .mlp)
            edit(&c)
            do { try c.validate(); return "accepted" } catch { return "\(error)" }
        }
        XCTAssertEqual(message { $0.updateScheme = .simultaneous; $0.criticSteps = 5 },
                       "--critic-steps 5 needs the alternating update scheme; pass --update-scheme alternating")
        XCTAssertEqual(message { $0.updateScheme = .simultaneous; $0.discriminatorUpdate = .split },
                       "--d-update split needs the alternating update scheme; pass --update-scheme alternating")
        XCTAssertEqual(message { $0.clipValue = 0.01 }, "--clip applies to --loss wgan only; drop --clip, or pass --loss wgan")
        XCTAssertEqual(message { $0.loss = .wgan; $0.labelSmoothing = 0.1 },
                       "--label-smoothing applies to --loss bce only (a critic has no targets); drop --label-smoothing")
        XCTAssertEqual(message { $0.loss = .wganGP; $0.discriminatorUpdate = .split },
                       "--d-update split applies to --loss bce only; drop --d-update, or pass --loss bce")
        XCTAssertEqual(message { _ in }, "accepted")
    }

    /// A WGAN run with RMSprop checkpoints its optimizer's state under its own name and resumes it.
    func testRMSpropStateIsCheckpointedByName() throws {
        var c = GANConfiguration.defaults(for: .mlp, loss: .wgan)
        c.batchSize = 4
        c.generatorOptimizer = .rmsprop()
        c.discriminatorOptimizer = .rmsprop()
        let trainer = GANTrainer(configuration: c, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        _ = try trainer.step(real: [Float](repeating: 0.1, count: 5 * 4 * 784), step: 0)
        let path = NSTemporaryDirectory() + "gantry-rmsprop-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint.save(trainer, step: 1, to: path)
        let restored = GANTrainer(configuration: try Checkpoint.configuration(at: path), communicator: SingleProcessCommunicator())
        XCTAssertEqual(try Checkpoint.restore(restored, from: path), 1)
        XCTAssertEqual(restored.discriminatorOptimizer.stepCount, 5)
        XCTAssertEqual(restored.discriminatorOptimizer.state.map(\.name), ["rmsprop.s"])
        XCTAssertEqual(Array(restored.discriminatorOptimizer.state[0].values), Array(trainer.discriminatorOptimizer.state[0].values))
    }

    /// A configuration saved before the losses existed (no loss, critic or optimizer-kind keys)
    /// loads with their defaults: binary cross-entropy, one D update, Adam.
    func testConfigurationsWithoutTheNewSettingsLoad() throws {
        let old = """
            {"batchSize":64,"discriminatorOptimizer":{"beta1":0.9,"beta2":0.999,"epsilon":1e-07,"learningRate":0.001},\
            "dropoutRate":0.3,"generatorOptimizer":{"beta1":0.9,"beta2":0.999,"epsilon":1e-07,"learningRate":0.001},\
            "imageHeight":28,"imageWidth":28,"labelSmoothing":0,"latentDimension":100,"model":"mlp","noise":"normal",\
            "seed":0,"synchronizedBatchNorm":false,"updateScheme":"alternating"}
            """
        let c = try JSONDecoder().decode(GANConfiguration.self, from: Data(old.utf8))
        XCTAssertEqual(c, GANConfiguration.defaults(for: .mlp))
    }
}

/// Each preset's settings, as the issue lists them, and flags beside a preset winning.
final class PresetTests: XCTestCase {
    func configuration(_ preset: Preset, ranks: Int = 1) -> GANConfiguration {
        var r = preset.request
        r.batchSize = preset.batchSize(ranks: ranks)
        return r.fresh
    }

    func testSeed000IsTheTutorial() {
        let p = Preset.seed000, c = configuration(p)
        XCTAssertEqual(c.model, .dcgan)
        XCTAssertEqual(c.updateScheme, .simultaneous)
        XCTAssertEqual(c.generatorOptimizer, .adam(learningRate: 1e-4, beta1: 0.9))
        XCTAssertEqual(c.discriminatorOptimizer, .adam(learningRate: 1e-4, beta1: 0.9))
        XCTAssertEqual(c.batchSize, 64)
        XCTAssertEqual(p.length, .epochs(100))
        XCTAssertEqual(p.checkpointEvery, .epochs(10))
        XCTAssertEqual(p.sampleEvery, .epochs(1))
        XCTAssertEqual(p.sampleCount, 16)
    }

    func testSeed001TrainsDTwiceOnSplitBatches() {
        let p = Preset.seed001, c = configuration(p)
        XCTAssertEqual(c.model, .mlp)
        XCTAssertEqual(c.updateScheme, .alternating)
        XCTAssertEqual(c.discriminatorUpdate, .split)
        XCTAssertEqual(c.generatorNoise, .fresh)
        XCTAssertEqual(c.noise, .normal)
        XCTAssertEqual(c.generatorOptimizer, .adam(learningRate: 1e-3))
        XCTAssertEqual(c.batchSize, 128)
        XCTAssertEqual(p.length, .steps(20_000))
        XCTAssertEqual(p.sampleEvery, .steps(1000))
    }

    func testSeed002ReusesZAndSmoothsLabels() {
        let p = Preset.seed002, c = configuration(p)
        XCTAssertEqual(c.discriminatorUpdate, .joint)
        XCTAssertEqual(c.generatorNoise, .same)
        XCTAssertEqual(c.noise, .uniform)
        XCTAssertEqual(c.labelSmoothing, 0.1)
        XCTAssertEqual(c.batchSize, 100)
        XCTAssertEqual(c.generatorOptimizer, OptimizerConfig(learningRate: 1e-3, epsilon: 1e-8))
        XCTAssertEqual(p.length, .epochs(100))
    }

    func testSeed003IsTheWGANItMeans() {
        let c = configuration(Preset.seed003)
        XCTAssertEqual(c.model, .dcganWGAN)
        XCTAssertEqual(c.loss, .wgan)
        XCTAssertEqual(c.clipValue, 0.01)
        XCTAssertEqual(c.criticSteps, 5)
        XCTAssertEqual(c.generatorOptimizer, .adam(learningRate: 2e-4, beta1: 0.5))
        XCTAssertEqual(c.batchSize, 32)
    }

    func testSeed004IsWGANGP() {
        let c = configuration(Preset.seed004)
        XCTAssertEqual(c.model, .dcganGP)
        XCTAssertEqual(c.loss, .wganGP)
        XCTAssertEqual(c.penaltyWeight, 10)
        XCTAssertEqual(c.criticSteps, 5)
        XCTAssertEqual(c.dropoutRate, 0)
        XCTAssertEqual(c.generatorOptimizer, .adam(learningRate: 2e-4, beta1: 0.5, beta2: 0.999))
        XCTAssertEqual(c.batchSize, 16)
    }

    /// The tuned presets: the tutorial's DCGAN and seed 001's MLP with the settings README's
    /// "Quality and time, measured" chose, within their time budgets.
    func testFastPresetsSetTheirTunedSettings() {
        let dcgan = configuration(Preset.fastDCGAN, ranks: 2)
        XCTAssertEqual(dcgan.model, .dcgan)
        XCTAssertEqual(dcgan.loss, .bce)
        XCTAssertEqual(dcgan.updateScheme, .alternating)
        XCTAssertEqual(dcgan.discriminatorUpdate, .joint)
        XCTAssertEqual(dcgan.generatorNoise, .same)
        XCTAssertEqual(dcgan.generatorOptimizer, .adam(learningRate: 6e-4, beta1: 0.5))
        XCTAssertEqual(dcgan.discriminatorOptimizer, .adam(learningRate: 6e-4, beta1: 0.5))
        XCTAssertEqual(dcgan.dropoutRate, 0)
        XCTAssertEqual(dcgan.generatorAverageDecay, 0.9995)
        XCTAssertEqual(dcgan.batchSize, 32, "global batch 64 on 2 ranks")
        XCTAssertEqual(Preset.fastDCGAN.maxSeconds, 600)
        let mlp = configuration(Preset.fastMLP, ranks: 2)
        XCTAssertEqual(mlp.model, .mlp)
        XCTAssertEqual(mlp.discriminatorUpdate, .split)
        XCTAssertEqual(mlp.generatorOptimizer, .adam(learningRate: 1e-3))
        XCTAssertEqual(mlp.generatorAverageDecay, 0.9999)
        XCTAssertEqual(mlp.batchSize, 64, "global batch 128 on 2 ranks")
        XCTAssertEqual(Preset.fastMLP.maxSeconds, 120)
    }

    /// The global batch splits over ranks that divide it, else each rank takes it whole (and says so).
    func testTheGlobalBatchSplitsWhenItDivides() {
        XCTAssertEqual(Preset.seed001.batchSize(ranks: 2), 64)
        XCTAssertEqual(Preset.seed001.batchSize(ranks: 4), 32)
        XCTAssertNil(Preset.seed001.batchNote(ranks: 4))
        XCTAssertEqual(Preset.seed001.batchSize(ranks: 3), 128)
        XCTAssertEqual(Preset.seed001.batchNote(ranks: 3),
                       "--preset seed-001: its global batch 128 does not divide over 3 ranks; each rank takes 128 "
                       + "(global batch 384); pass --batch-size to choose another")
    }

    func testFlagsBesideAPresetWin() {
        var flags = ConfigurationRequest()
        flags.learningRate = 5e-4
        flags.seed = 9
        let c = Preset.seed000.request.overridden(by: flags).fresh
        XCTAssertEqual(c.generatorOptimizer.learningRate, 5e-4)
        XCTAssertEqual(c.generatorOptimizer.beta1, 0.9, "the preset's beta1 stays")
        XCTAssertEqual(c.seed, 9)
        XCTAssertEqual(c.model, .dcgan)
    }

    /// --g-lr and --d-lr set one network's rate; --lr beside a preset with its own rates replaces them.
    func testEachNetworkMayHaveItsOwnLearningRate() throws {
        var rates = ConfigurationRequest()
        rates.model = .dcgan
        rates.learningRate = 1e-4
        rates.discriminatorLearningRate = 4e-4
        let c = rates.fresh
        XCTAssertEqual(c.generatorOptimizer.learningRate, 1e-4)
        XCTAssertEqual(c.discriminatorOptimizer.learningRate, 4e-4)
        XCTAssertEqual(ConfigurationRequest(c).fresh, c)
        var lr = ConfigurationRequest()
        lr.learningRate = 2e-4
        let both = rates.overridden(by: lr).fresh
        XCTAssertEqual([both.generatorOptimizer.learningRate, both.discriminatorOptimizer.learningRate], [2e-4, 2e-4])
        var g = ConfigurationRequest()
        g.generatorLearningRate = 3e-4
        let one = rates.overridden(by: g).fresh
        XCTAssertEqual([one.generatorOptimizer.learningRate, one.discriminatorOptimizer.learningRate], [3e-4, 4e-4])
        // Resuming with another rate for one network is noted, as --lr is.
        let (resumed, notes) = try g.resumed(from: c, path: "x.safetensors")
        XCTAssertEqual(resumed.generatorOptimizer.learningRate, 3e-4)
        XCTAssertEqual(resumed.discriminatorOptimizer.learningRate, 4e-4)
        XCTAssertEqual(notes.map(\.description),
                       ["warning: learning rate 0.0003 replaces the checkpoint's 0.0001 for the generator from here"])
        let (_, same) = try ConfigurationRequest(c).resumed(from: c, path: "x.safetensors")
        XCTAssertEqual(same, [])
    }

    func testEveryPresetIsValid() throws {
        for p in Preset.all { XCTAssertNoThrow(try configuration(p).validate(), p.name) }
        XCTAssertEqual(Preset.all.map(\.name), ["seed-000", "seed-001", "seed-002", "seed-003", "seed-004", "fast-dcgan", "fast-mlp"])
    }
}
