import Optim

/// The GAN architectures Gantry trains.
public enum ModelKind: String, Codable, Sendable, CaseIterable {
    /// Seed 001 (GANs in Action, ch. 3): G 100-128-784 tanh, D 784-128-1, LeakyReLU 0.01.
    case mlp
    /// Seed 000 (the TensorFlow DCGAN tutorial): G Dense 7x7x256 + BN, ConvT 128/64/1 5x5;
    /// D Conv 64/128 5x5 stride 2 with dropout 0.3; LeakyReLU 0.3.
    case dcgan
    /// Seed 003's DCGAN (a WGAN critic): G Dense 7x7x256 ReLU, ConvT 128 5x5 s1 ReLU + BN,
    /// ConvT 64 5x5 s2 ReLU + BN, ConvT 1 5x5 s2 tanh; D as the tutorial's.
    case dcganWGAN = "dcgan-wgan"
    /// Seed 004's 4x4-kernel DCGAN made consistent (a WGAN-GP critic): G Dense 7x7x256 + BN
    /// (momentum 0.8) + LeakyReLU 0.2, ConvT 128 4x4 s2 and 64 4x4 s2 with BN and LeakyReLU,
    /// ConvT 1 7x7 s1 tanh; critic Conv 64 and 128 4x4 s2 with LeakyReLU 0.2, Dense 1.
    case dcganGP = "dcgan-gp"

    /// The models the benchmarks and the projection measure by default: the two the TensorFlow
    /// anchors time (seed 001's MLP and seed 000's DCGAN).
    public static let benchmarked: [ModelKind] = [.mlp, .dcgan]

    /// A convolutional model (the DCGANs), as opposed to the MLP.
    public var isConvolutional: Bool { self != .mlp }
}

/// What the two networks minimize (see `AdversarialLoss`).
public enum LossKind: String, Codable, Sendable, CaseIterable {
    /// Binary cross-entropy on D's logits, with the non-saturating generator loss (the seeds 000-002).
    case bce
    /// Wasserstein (Arjovsky et al. 2017): critic mean D(fake) − mean D(real), generator
    /// −mean D(fake), the critic's weights clipped (`clipValue`).
    case wgan
    /// WGAN with a gradient penalty instead of clipping (Gulrajani et al. 2017).
    case wganGP = "wgan-gp"

    public var isWasserstein: Bool { self != .bce }
}

/// The noise the generator's turn of an alternating step draws.
public enum GeneratorNoise: String, Codable, Sendable, CaseIterable {
    /// A fresh batch of z (seed 001, and the WGAN papers).
    case fresh
    /// The z of the discriminator's (last) update (seed 002 feeds one placeholder to both).
    case same
}

/// How the discriminator's turn of an alternating step updates it.
public enum DiscriminatorUpdate: String, Codable, Sendable, CaseIterable {
    /// One update on the summed loss of a real and a generated batch (seed 002).
    case joint
    /// Two updates, one on the real batch and one on the generated batch, as two Keras
    /// `train_on_batch` calls (seed 001).
    case split
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
    public var generatorOptimizer = OptimizerConfig.adam(learningRate: 1e-3)
    public var discriminatorOptimizer = OptimizerConfig.adam(learningRate: 1e-3)
    public var loss: LossKind = .bce
    /// Discriminator (critic) updates per generator update, each on its own real batch
    /// (WGAN's n_critic); the alternating scheme only.
    public var criticSteps = 1
    public var discriminatorUpdate: DiscriminatorUpdate = .joint
    public var generatorNoise: GeneratorNoise = .fresh
    /// WGAN: the critic's parameters are clipped to [-clipValue, clipValue] after each update.
    public var clipValue: Float?
    /// WGAN-GP: the penalty's weight λ.
    public var penaltyWeight: Float = 10
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
    /// β of the generator's exponential moving average (`MovingAverage`), which samples,
    /// evaluations and `gantry sample` draw from; 0: none, the last iterate draws.
    public var generatorAverageDecay: Float = 0

    public init() {}

    /// Whether the trainer keeps a moving average of the generator.
    public var averagesGenerator: Bool { generatorAverageDecay > 0 }

    // Checkpoints written before a setting existed lack its key: it takes its default then.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var c = GANConfiguration()
        func read<T: Decodable>(_ key: CodingKeys, _ path: WritableKeyPath<GANConfiguration, T>, required: Bool = true) throws {
            if required {
                c[keyPath: path] = try container.decode(T.self, forKey: key)
            } else if let value = try container.decodeIfPresent(T.self, forKey: key) {
                c[keyPath: path] = value
            }
        }
        try read(.model, \.model)
        try read(.latentDimension, \.latentDimension)
        try read(.imageHeight, \.imageHeight)
        try read(.imageWidth, \.imageWidth)
        try read(.batchSize, \.batchSize)
        try read(.generatorOptimizer, \.generatorOptimizer)
        try read(.discriminatorOptimizer, \.discriminatorOptimizer)
        try read(.loss, \.loss, required: false)
        try read(.criticSteps, \.criticSteps, required: false)
        try read(.discriminatorUpdate, \.discriminatorUpdate, required: false)
        try read(.generatorNoise, \.generatorNoise, required: false)
        c.clipValue = try container.decodeIfPresent(Float.self, forKey: .clipValue)
        try read(.penaltyWeight, \.penaltyWeight, required: false)
        try read(.labelSmoothing, \.labelSmoothing)
        try read(.noise, \.noise)
        try read(.updateScheme, \.updateScheme)
        try read(.seed, \.seed)
        try read(.dropoutRate, \.dropoutRate)
        try read(.synchronizedBatchNorm, \.synchronizedBatchNorm)
        try read(.generatorAverageDecay, \.generatorAverageDecay, required: false)
        self = c
    }

    public var pixelCount: Int { imageHeight * imageWidth }

    /// The settings for `model` trained with `loss`: the model's seed's (learning rate, Adam's
    /// β₁, scheme, batch), then the loss's own where it has them (n_critic, clipping, the
    /// WGAN-GP paper's Adam).
    public static func defaults(for model: ModelKind, loss: LossKind = .bce) -> GANConfiguration {
        var c = defaults(for: model)
        c.loss = loss
        switch loss {
        case .bce:
            break
        case .wgan:
            // Arjovsky et al.: n_critic 5, c 0.01, RMSprop 5e-5 (Adam is kept unless asked).
            c.updateScheme = .alternating
            c.criticSteps = 5
            c.clipValue = 0.01
        case .wganGP:
            // Gulrajani et al., Algorithm 1: λ 10, n_critic 5, Adam 1e-4, β (0.5, 0.9); no
            // dropout in the critic, whose gradient the penalty constrains.
            c.updateScheme = .alternating
            c.criticSteps = 5
            c.penaltyWeight = 10
            c.generatorOptimizer = .adam(learningRate: 1e-4, beta1: 0.5, beta2: 0.9)
            c.discriminatorOptimizer = .adam(learningRate: 1e-4, beta1: 0.5, beta2: 0.9)
            c.dropoutRate = 0
        }
        return c
    }

    /// The seed's settings for `model` (learning rate, Adam's β₁, scheme, batch).
    private static func defaults(for model: ModelKind) -> GANConfiguration {
        var c = GANConfiguration()
        c.model = model
        switch model {
        case .mlp:
            c.generatorOptimizer = OptimizerConfig.adam(learningRate: 1e-3)
            c.discriminatorOptimizer = OptimizerConfig.adam(learningRate: 1e-3)
            c.updateScheme = .alternating
            c.batchSize = 64
        case .dcgan:
            // β₁ 0.5 as the DCGAN paper (Radford et al. 2016, section 4), not the tutorial's
            // Keras default 0.9: with 0.9 the step matches TensorFlow's to 1e-4, yet training
            // oscillates, and after 2 epochs on 2 ranks its grids show strokes, not digits.
            c.generatorOptimizer = OptimizerConfig.adam(learningRate: 1e-4, beta1: 0.5)
            c.discriminatorOptimizer = OptimizerConfig.adam(learningRate: 1e-4, beta1: 0.5)
            c.updateScheme = .simultaneous
            c.batchSize = 64
        case .dcganWGAN, .dcganGP:
            c.updateScheme = .alternating
            c.batchSize = 64
            c.generatorOptimizer = .adam(learningRate: 2e-4, beta1: 0.5)
            c.discriminatorOptimizer = .adam(learningRate: 2e-4, beta1: 0.5)
            c.dropoutRate = model == .dcganWGAN ? 0.3 : 0
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
    /// WGAN-GP's per-example mixing weights ε of real and generated images.
    case penaltyMix = 6
    /// The images `--eval-every` judges.
    case evaluationNoise = 7
}

/// A configuration whose settings do not go together.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
    case conflicting(String, fix: String)

    public var description: String {
        switch self {
        case let .conflicting(problem, fix): return "\(problem); \(fix)"
        }
    }
}

extension GANConfiguration {
    /// Throws when settings contradict each other (before any model is built).
    public func validate() throws {
        func refuse(_ problem: String, _ fix: String) throws { throw ConfigurationError.conflicting(problem, fix: fix) }
        if updateScheme == .simultaneous {
            if criticSteps > 1 {
                try refuse("--critic-steps \(criticSteps) needs the alternating update scheme", "pass --update-scheme alternating")
            }
            if discriminatorUpdate == .split {
                try refuse("--d-update split needs the alternating update scheme", "pass --update-scheme alternating")
            }
        }
        if clipValue != nil && loss != .wgan { try refuse("--clip applies to --loss wgan only", "drop --clip, or pass --loss wgan") }
        if loss.isWasserstein && labelSmoothing != 0 {
            try refuse("--label-smoothing applies to --loss bce only (a critic has no targets)", "drop --label-smoothing")
        }
        if loss.isWasserstein && discriminatorUpdate == .split {
            try refuse("--d-update split applies to --loss bce only", "drop --d-update, or pass --loss bce")
        }
        if let clipValue, !(clipValue > 0 && clipValue.isFinite) { try refuse("--clip must be positive, got \(clipValue)", "pass e.g. --clip 0.01") }
        if !(generatorAverageDecay >= 0 && generatorAverageDecay < 1) {
            try refuse("--ema must be in [0, 1), got \(generatorAverageDecay)", "pass e.g. --ema 0.999, or --ema 0 for none")
        }
    }
}
