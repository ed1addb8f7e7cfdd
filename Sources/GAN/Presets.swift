/// How often something happens: every N steps, or every N epochs (steps depend on the ranks).
public enum Interval: Sendable, Equatable {
    case steps(Int)
    case epochs(Int)

    /// In steps, for a run of `stepsPerEpoch` steps per epoch.
    public func steps(perEpoch stepsPerEpoch: Int) -> Int {
        switch self {
        case let .steps(n): return n
        case let .epochs(n): return n * stepsPerEpoch
        }
    }
}

/// One seed's training procedure (or a tuned one), as `gantry train --preset NAME` runs it:
/// the settings of `request`, the seed's global batch, run length, and outputs. A flag given
/// beside a preset replaces its setting.
public struct Preset: Sendable {
    public var name: String
    /// The program it reproduces, in a line.
    public var origin: String
    /// What the program does, step by step, in a line.
    public var procedure: String
    /// Every setting but the batch (which `batchSize(ranks:)` splits).
    public var request: ConfigurationRequest
    /// The seed's batch: the global batch, split across ranks when it divides.
    public var globalBatch: Int
    public var length: TrainingLength
    public var sampleEvery: Interval
    public var checkpointEvery: Interval
    /// Images in the fixed-noise grid.
    public var sampleCount: Int
    /// Where the preset departs from the seed's code, and why.
    public var differences: [String]
    /// A wall-clock budget (`--max-seconds`), for the presets tuned for time to quality.
    public var maxSeconds: Double? = nil

    /// The per-rank batch on `ranks` ranks: the global batch split when it divides, else the
    /// global batch on each rank (the DDP convention), which `batchNote` explains.
    public func batchSize(ranks: Int) -> Int {
        globalBatch % ranks == 0 ? globalBatch / ranks : globalBatch
    }

    /// Why the batch per rank is not the split global batch, or nil when it is.
    public func batchNote(ranks: Int) -> String? {
        guard globalBatch % ranks != 0 else { return nil }
        return "--preset \(name): its global batch \(globalBatch) does not divide over \(ranks) ranks; each rank takes "
            + "\(globalBatch) (global batch \(globalBatch * ranks)); pass --batch-size to choose another"
    }

    public static let all: [Preset] = [seed000, seed001, seed002, seed003, seed004, fastDCGAN, fastMLP]

    public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

    /// The TensorFlow DCGAN tutorial.
    public static let seed000: Preset = {
        var r = ConfigurationRequest()
        r.model = .dcgan
        r.loss = .bce
        r.updateScheme = .simultaneous
        r.learningRate = 1e-4
        r.beta1 = 0.9
        r.noise = .normal
        r.dropoutRate = 0.3
        return Preset(
            name: "seed-000", origin: "the TensorFlow DCGAN tutorial (Keras)",
            procedure: "one G pass feeds D's loss on a real and a generated batch and G's loss; both Adam steps together",
            request: r, globalBatch: 64, length: .epochs(100), sampleEvery: .epochs(1), checkpointEvery: .epochs(10),
            sampleCount: 16,
            differences: [
                "the tutorial shuffles with a 60,000-image buffer and keeps the last, smaller batch of an epoch; Gantry "
                    + "drops it (every step has the same batch, so every rank the same shard size)",
                "the tutorial's checkpoints are TensorFlow's; Gantry's are safetensors with the optimizer state",
            ])
    }()

    /// GANs in Action, chapter 3.
    public static let seed001: Preset = {
        var r = ConfigurationRequest()
        r.model = .mlp
        r.loss = .bce
        r.updateScheme = .alternating
        r.discriminatorUpdate = .split
        r.generatorNoise = .fresh
        r.learningRate = 1e-3
        r.beta1 = 0.9
        r.noise = .normal
        return Preset(
            name: "seed-001", origin: "GANs in Action, chapter 3 (Keras MLP GAN)",
            procedure: "D.train_on_batch(real, 1) then D.train_on_batch(G(z), 0): two Adam steps of D; then one G step "
                + "on fresh noise through the updated D",
            request: r, globalBatch: 128, length: .steps(20_000), sampleEvery: .steps(1000),
            checkpointEvery: .steps(5000), sampleCount: 16,
            differences: [
                "the book samples each batch's images at random with replacement; Gantry serves epochs of a shuffled shard "
                    + "(every image once per epoch), which is what makes N ranks equal one rank",
            ])
    }()

    /// The TF1 MLP GAN.
    public static let seed002: Preset = {
        var r = ConfigurationRequest()
        r.model = .mlp
        r.loss = .bce
        r.updateScheme = .alternating
        r.discriminatorUpdate = .joint
        r.generatorNoise = .same
        r.learningRate = 1e-3
        r.beta1 = 0.9
        r.epsilon = 1e-8
        r.noise = .uniform
        r.labelSmoothing = 0.1
        return Preset(
            name: "seed-002", origin: "a TensorFlow 1 MLP GAN",
            procedure: "one D step on d_loss_real + d_loss_fake (real targets 0.9), then one G step on the same z",
            request: r, globalBatch: 100, length: .epochs(100), sampleEvery: .epochs(1), checkpointEvery: .epochs(10),
            sampleCount: 16,
            differences: [
                "TF1's AdamOptimizer has ε 1e-8, which the preset keeps; its MLP is Gantry's mlp model (100-128-784, "
                    + "784-128-1, LeakyReLU 0.01)",
            ])
    }()

    /// The DCGAN with a Wasserstein-style loss.
    public static let seed003: Preset = {
        var r = ConfigurationRequest()
        r.model = .dcganWGAN
        r.loss = .wgan
        r.updateScheme = .alternating
        r.criticSteps = 5
        r.clipValue = 0.01
        r.learningRate = 2e-4
        r.beta1 = 0.5
        r.noise = .normal
        r.dropoutRate = 0.3
        return Preset(
            name: "seed-003", origin: "a DCGAN with a Wasserstein-style loss (Keras)",
            procedure: "five critic updates (each on a real and a generated batch, weights clipped to ±0.01), then one "
                + "G update on fresh noise",
            request: r, globalBatch: 32, length: .epochs(50), sampleEvery: .epochs(1), checkpointEvery: .epochs(10),
            sampleCount: 16,
            differences: [
                "the seed's generator loss mean(D(fake)) has the wrong sign (G would make its images look fake); the "
                    + "preset minimizes −mean(D(fake)), as Arjovsky et al.",
                "the seed keeps a sigmoid on a critic with no Lipschitz constraint; the preset's critic outputs a "
                    + "value, its weights clipped to ±0.01 after each update, n_critic 5 (the WGAN paper)",
                "Adam 2e-4 with β₁ 0.5 (the seed's optimizer; the WGAN paper prefers RMSprop 5e-5: --optimizer "
                    + "rmsprop); the seed's length is not given, 50 epochs as the tutorial it builds on",
            ])
    }()

    /// The DCGAN settings that reached the best FID within 10 minutes on the 2-core machine
    /// (README, "Fast presets: how they were chosen"): 2 ranks of 1 thread, the alternating
    /// scheme on the same z, Adam 6e-4, no dropout in D, images from G's moving average.
    public static let fastDCGAN: Preset = {
        var r = ConfigurationRequest()
        r.model = .dcgan
        r.loss = .bce
        r.updateScheme = .alternating
        r.discriminatorUpdate = .joint
        r.generatorNoise = .same
        r.learningRate = 6e-4
        r.beta1 = 0.5
        r.noise = .normal
        r.dropoutRate = 0
        r.generatorAverageDecay = 0.9995
        return Preset(
            name: "fast-dcgan", origin: "the tutorial's DCGAN, tuned for FID within 10 minutes on 2 cores",
            procedure: "a D update on a real and a generated batch, then a G update on the same z (G's pass reused); "
                + "Adam 6e-4, beta1 0.5; no dropout in D; images from G's moving average (0.9995); "
                + "run as launch/train -np 2 (one thread per rank)",
            request: r, globalBatch: 64, length: .steps(1_000_000), sampleEvery: .steps(1000), checkpointEvery: .steps(5000),
            sampleCount: 100,
            differences: ["not a seed: the tutorial's architecture with the settings that reached the best FID in 10 "
                + "minutes (README, \"Fast presets: how they were chosen\"): the alternating scheme, G's moving average, D "
                + "without dropout, Adam 6e-4, and the same z for G's turn, whose reused pass gives 14 % more steps"],
            maxSeconds: 600)
    }()

    /// The MLP GAN settings that reached the best FID within 2 minutes on the 2-core machine.
    public static let fastMLP: Preset = {
        var r = seed001.request
        r.model = .mlp
        r.generatorAverageDecay = 0.9999
        return Preset(
            name: "fast-mlp", origin: "seed 001's MLP GAN, for FID within 2 minutes on 2 cores",
            procedure: seed001.procedure + "; images from G's moving average (0.9999); run as launch/train -np 2",
            request: r, globalBatch: 128, length: .steps(10_000_000), sampleEvery: .steps(10_000),
            checkpointEvery: .steps(50_000), sampleCount: 100,
            differences: ["not a seed: seed 001's procedure (two D updates, Adam 1e-3, global batch 128) with G's moving "
                + "average (0.9999), which ranked first by FID in 120-second runs (README, \"Fast presets: how they were chosen\")"],
            maxSeconds: 120)
    }()

    /// The DCGAN with a gradient penalty.
    public static let seed004: Preset = {
        var r = ConfigurationRequest()
        r.model = .dcganGP
        r.loss = .wganGP
        r.updateScheme = .alternating
        r.criticSteps = 5
        r.penaltyWeight = 10
        r.learningRate = 2e-4
        r.beta1 = 0.5
        r.beta2 = 0.999
        r.noise = .normal
        r.dropoutRate = 0
        return Preset(
            name: "seed-004", origin: "a DCGAN with a gradient penalty (Keras; its code does not run)",
            procedure: "five critic updates on mean D(fake) − mean D(real) + 10·(‖∇D(x̂)‖ − 1)², then one G update",
            request: r, globalBatch: 16, length: .epochs(50), sampleEvery: .epochs(1), checkpointEvery: .epochs(10),
            sampleCount: 16,
            differences: [
                "the seed reshapes a Dense 128 to 7x7x256; the preset's Dense has 7·7·256 units",
                "the seed's generator makes 14x14 images and resizes MNIST to fit; the preset's 4x4 stride-2 layers "
                    + "and a 7x7 stride-1 output layer make 28x28",
                "the seed's penalty is not a gradient norm; the preset's is WGAN-GP's, differentiated exactly "
                    + "(double backpropagation)",
                "the seed logs to TensorBoard; Gantry logs the same losses to metrics.jsonl (TensorBoard is issue 17)",
            ])
    }()
}
