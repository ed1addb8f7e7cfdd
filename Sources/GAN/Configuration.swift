import Optim

/// The GAN architectures Gantry trains.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
    /// Seed 001 (GANs in Action, ch. 3): G 100-128-784 tanh, D 784-128-1, LeakyReLU 0.01.
    case mlp
    /// Seed 000 (the TensorFlow DCGAN tutorial): G Dense 7x7x256 + BN, ConvT 128/64/1 5x5;
    /// D Conv 64/128 5x5 stride 2 with dropout 0.3; LeakyReLU 0.3.
    case dcgan
}

/// How the two networks are updated within one step.
public enum UpdateScheme: String, Codable, Sendable, CaseIterable {
    /// Seeds 001/002: a discriminator step, then a generator step on fresh noise through the
    /// updated discriminator.
    case alternating
    /// Seed 000: one generator forward pass feeds both losses; both networks step together.
    case simultaneous
}

/// The distribution of the generator's input z.
public enum NoiseDistribution: String, Codable, Sendable, CaseIterable {
    /// z ~ N(0, 1).
    case normal
    /// z ~ U[-1, 1] (seed 002's variant).
    case uniform
}

/// Everything that determines a training run's arithmetic, saved in every checkpoint so that
/// a resumed run and `gantry sample` rebuild exactly the same models.
public struct GANConfiguration: Codable, Sendable, Equatable {
    public var model: ModelKind = .mlp
    /// Size of z.
    public var latentDimension = 100
    /// Image height and width in pixels (MNIST: 28 x 28, one channel).
    public var imageHeight = 28
    public var imageWidth = 28
    /// Examples per rank per step (the DDP/Horovod convention); the global batch is this times
    /// the number of ranks.
    public var batchSize = 64
    public var generatorOptimizer = AdamConfig(learningRate: 1e-3)
    public var discriminatorOptimizer = AdamConfig(learningRate: 1e-3)
    /// One-sided label smoothing: real targets are `1 - labelSmoothing` (seed 002: 0.1).
    public var labelSmoothing: Float = 0
    public var noise: NoiseDistribution = .normal
    public var updateScheme: UpdateScheme = .alternating
    /// Seed of parameter initialization, noise, data order and dropout.
    public var seed: UInt64 = 0
    /// Dropout rate of the DCGAN discriminator (the tutorial's 0.3).
    public var dropoutRate: Float = 0.3
    /// Batch norm statistics over the global batch (all ranks) instead of each rank's own.
    public var synchronizedBatchNorm = false

    public init() {}

    public var pixelCount: Int { imageHeight * imageWidth }

    /// The seed's settings for `model` (learning rate, Adam's β₁, scheme, batch).
    public static func defaults(for model: ModelKind) -> GANConfiguration {
        var c = GANConfiguration()
        c.model = model
        switch model {
        case .mlp:
            c.generatorOptimizer = AdamConfig(learningRate: 1e-3)
            c.discriminatorOptimizer = AdamConfig(learningRate: 1e-3)
            c.updateScheme = .alternating
            c.batchSize = 64
        case .dcgan:
            // β₁ 0.5 as the DCGAN paper (Radford et al. 2016, section 4), not the tutorial's
            // Keras default 0.9: with 0.9 the step matches TensorFlow's to 1e-4, yet training
            // oscillates, and after 2 epochs on 2 ranks its grids show strokes, not digits.
            c.generatorOptimizer = AdamConfig(learningRate: 1e-4, beta1: 0.5)
            c.discriminatorOptimizer = AdamConfig(learningRate: 1e-4, beta1: 0.5)
            c.updateScheme = .simultaneous
            c.batchSize = 64
        }
        return c
    }
}

/// Purposes of random streams: every random draw is keyed by (seed, purpose, ...), so no two
/// uses share numbers and each is reproducible on its own.
enum RandomPurpose: UInt64 {
    case parameterInitialization = 1
    case discriminatorNoise = 2
    case generatorNoise = 3
    case sampleNoise = 4
    case dropout = 5
}
