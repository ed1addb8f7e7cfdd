import Kernels

/// What a forward pass needs to know besides its input.
public struct ForwardContext {
    /// Training (batch statistics, dropout active) or inference (running statistics, no dropout).
    public var training: Bool
    /// Random numbers for stochastic layers, keyed by the caller per forward pass (seed,
    /// step, which pass); `Sequential` derives one stream per layer from it.
    public var random: RandomStream
    /// Global index of the first example of this batch; stochastic layers draw per global
    /// example so that N ranks reproduce what one rank with the whole batch draws.
    public var firstExample: Int

    public init(training: Bool, random: RandomStream = RandomStream(key: 0), firstExample: Int = 0) {
        self.training = training
        self.random = random
        self.firstExample = firstExample
    }
}

/// What a backward pass should produce.
public struct BackwardOptions: Sendable {
    /// Add ∂loss/∂parameters into the network's gradient buffer.
    public var parameterGradients: Bool
    /// Compute ∂loss/∂input of the first layer (needed when the network's input is another
    /// network's output, as D's input is G's output in the generator step).
    public var inputGradient: Bool

    public init(parameterGradients: Bool = true, inputGradient: Bool = false) {
        self.parameterGradients = parameterGradients
        self.inputGradient = inputGradient
    }
}

/// A layer: a forward pass and its backward pass, side by side, over a batch of row-major
/// examples (`batch x inputCount` in, `batch x outputCount` out).
///
/// A layer owns its output and input-gradient buffers (sized once for the largest batch, so a
/// training step allocates nothing), and remembers its last input for the backward pass, which
/// must follow the matching forward pass.
public protocol Layer: AnyObject {
    /// Values per example in and out.
    var inputCount: Int { get }
    var outputCount: Int { get }

    /// Declares this layer's parameter tensors (none for activations).
    func declareParameters(prefix: String, in layout: inout ParameterLayout)
    /// Points the layer at its parameter and gradient views once the store exists.
    func bind(to store: ParameterStore)
    /// Declares non-trainable state that checkpoints keep (batch norm's running statistics).
    func declareState(prefix: String, in layout: inout ParameterLayout)
    /// Points the layer at its state views (in `store.values`; its gradients are unused).
    func bindState(to store: ParameterStore)
    /// Fills parameters with their initial values (Keras defaults: Glorot-uniform kernels,
    /// zero biases), from `random`.
    func initializeParameters(random: RandomStream)
    /// Allocates buffers for batches up to `maxBatch`.
    func allocate(maxBatch: Int)

    /// Returns a pointer to the layer's output (`batch x outputCount`), valid until the next forward.
    func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float>
    /// Given ∂loss/∂output, adds ∂loss/∂parameters into the gradient store (if asked) and
    /// returns ∂loss/∂input (if `needInputGradient`, else nil).
    func backward(_ outputGradient: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                  needInputGradient: Bool) -> UnsafePointer<Float>?
}

extension Layer {
    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {}
    public func bind(to store: ParameterStore) {}
    public func declareState(prefix: String, in layout: inout ParameterLayout) {}
    public func bindState(to store: ParameterStore) {}
    public func initializeParameters(random: RandomStream) {}
}

/// A growable scratch buffer owned by a layer, allocated once for the largest batch.
public struct LayerBuffer {
    public private(set) var pointer: UnsafeMutablePointer<Float>?
    private(set) var capacity = 0

    public init() {}

    public mutating func reserve(_ count: Int) {
        guard count > capacity else { return }
        pointer?.deallocate()
        pointer = .allocate(capacity: count)
        pointer!.initialize(repeating: 0, count: count)
        capacity = count
    }

    public func free() { pointer?.deallocate() }

    public var base: UnsafeMutablePointer<Float> { pointer! }
}
