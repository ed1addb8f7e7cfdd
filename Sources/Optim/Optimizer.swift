import Kernels

/// The optimizers Gantry has.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable {
    /// Adam (Kingma & Ba), in Keras's form: what the seeds use.
    case adam
    /// RMSprop (Hinton's lecture 6e), as the WGAN paper trains its critic and generator.
    case rmsprop
}

/// An optimizer's hyper-parameters. The defaults are Keras's Adam, which the seeds use;
/// `rmsprop(learningRate:)` gives PyTorch's RMSprop defaults, which the WGAN paper's code ran.
public struct OptimizerConfig: Sendable, Equatable, Codable {
    public var kind: OptimizerKind
    public var learningRate: Float
    /// Adam's moment decays.
    public var beta1: Float
    public var beta2: Float
    /// RMSprop's decay of the mean square.
    public var rho: Float
    public var epsilon: Float

    public init(kind: OptimizerKind = .adam, learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                rho: Float = 0.99, epsilon: Float = 1e-7) {
        self.kind = kind
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.rho = rho
        self.epsilon = epsilon
    }

    /// Adam with Keras's defaults but for the given settings.
    public static func adam(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999) -> OptimizerConfig {
        OptimizerConfig(kind: .adam, learningRate: learningRate, beta1: beta1, beta2: beta2)
    }

    /// RMSprop with PyTorch's defaults (ρ 0.99, ε 1e-8), as the WGAN paper's code.
    public static func rmsprop(learningRate: Float = 5e-5) -> OptimizerConfig {
        OptimizerConfig(kind: .rmsprop, learningRate: learningRate, rho: 0.99, epsilon: 1e-8)
    }

    // Checkpoints written before RMSprop existed hold Adam's four fields only.
    private enum CodingKeys: String, CodingKey { case kind, learningRate, beta1, beta2, rho, epsilon }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(OptimizerKind.self, forKey: .kind) ?? .adam
        learningRate = try c.decode(Float.self, forKey: .learningRate)
        beta1 = try c.decode(Float.self, forKey: .beta1)
        beta2 = try c.decode(Float.self, forKey: .beta2)
        rho = try c.decodeIfPresent(Float.self, forKey: .rho) ?? 0.99
        epsilon = try c.decode(Float.self, forKey: .epsilon)
    }
}

/// An optimizer over one flat parameter buffer. Its state (moments, mean squares) is flat
/// buffers in the parameters' layout, which checkpoints keep under `state`'s names.
public protocol Optimizer: AnyObject {
    var config: OptimizerConfig { get }
    /// Parameters it updates.
    var count: Int { get }
    /// Updates applied so far.
    var stepCount: Int { get set }
    /// The state buffers, each `count` values, by the names checkpoints give them ("adam.m").
    var state: [(name: String, values: UnsafeMutableBufferPointer<Float>)] { get }
    /// Applies one update to `parameters` from `gradients` (both `count` values).
    func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>)
}

/// The optimizer `config` names, for `count` parameters.
public func makeOptimizer(count: Int, config: OptimizerConfig, backend: Backend) -> Optimizer {
    switch config.kind {
    case .adam: return Adam(count: count, config: config, backend: backend)
    case .rmsprop: return RMSprop(count: count, config: config, backend: backend)
    }
}
