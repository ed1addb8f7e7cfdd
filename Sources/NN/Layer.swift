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

    /// Floating-point operations of one forward pass over `batch` examples, counted
    /// analytically, for achieved GFLOP/s. The convention is the multiplies' (as MLPerf and
    /// the papers' "FLOPs" count them): 2 per multiply-add of a matrix product, including a
    /// convolution's taps that fall in the zero padding (the product computes them); bias
    /// additions, activations, batch norm and dropout count 0. The default is 0.
    func forwardFLOPs(batch: Int) -> Int
    /// Floating-point operations of one backward pass that computes the parameter gradients
    /// and/or the input gradient. The default counts one product of the forward's size for
    /// each, which is what a layer built on one matrix product does (dW = xᵀ·dy, dx = dy·Wᵀ);
    /// a parameterless layer that counts its forward must say what its backward costs.
    func backwardFLOPs(batch: Int, parameterGradients: Bool, inputGradient: Bool) -> Int
}

extension Layer {
    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {}
    public func bind(to store: ParameterStore) {}
    public func declareState(prefix: String, in layout: inout ParameterLayout) {}
    public func bindState(to store: ParameterStore) {}
    public func initializeParameters(random: RandomStream) {}

    public func forwardFLOPs(batch: Int) -> Int { 0 }

    public func backwardFLOPs(batch: Int, parameterGradients: Bool, inputGradient: Bool) -> Int {
        let product = forwardFLOPs(batch: batch)
        return (parameterGradients ? product : 0) + (inputGradient ? product : 0)
    }

    /// FLOPs of `pass` over `batch` examples.
    public func flops(batch: Int, _ pass: LayerPass) -> Int {
        switch pass {
        case .forward: return forwardFLOPs(batch: batch)
        case let .backward(parameterGradients, inputGradient):
            return backwardFLOPs(batch: batch, parameterGradients: parameterGradients, inputGradient: inputGradient)
        }
    }
}

/// One pass of one layer, as `Sequential` runs it.
public enum LayerPass: Hashable, Sendable {
    case forward
    /// A backward pass and what it computes.
    case backward(parameterGradients: Bool, inputGradient: Bool)
}

/// Hears each layer's pass begin and end (for per-layer timings and counts). `Sequential`
/// calls it around every layer when one is set, and costs one nil check per layer when not.
/// A small protocol here, implemented above (GAN's benchmark), so that NN needs no clock.
public protocol LayerObserver: AnyObject {
    func begin(layer: Int, _ pass: LayerPass)
    func end(layer: Int, _ pass: LayerPass)
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
