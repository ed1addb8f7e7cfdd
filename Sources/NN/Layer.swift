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
/// A layer owns its output buffer and what its backward pass needs from the forward pass (its
/// last input, a mask, im2col columns), all sized once for the largest batch, so a training step
/// allocates nothing. Its input gradient and any scratch that lives only during one call come
/// from the network's `NetworkMemory`. The backward pass must follow the matching forward pass.
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
    /// Allocates buffers for batches up to `maxBatch`, and reserves in `memory` the input
    /// gradient and per-call scratch it will take from there.
    func allocate(maxBatch: Int, memory: NetworkMemory)

    /// Returns a pointer to the layer's output (`batch x outputCount`), valid until the next forward.
    func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float>
    /// Given ∂loss/∂output, adds ∂loss/∂parameters into the gradient store (if asked) and
    /// returns ∂loss/∂input (if `needInputGradient`, else nil), in `NetworkMemory`'s input
    /// gradient buffer that does not hold `outputGradient` (or `outputGradient` itself, for a
    /// layer that moves no data): valid until the next backward of a layer of the same network.
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
        case .doubleBackward:
            // The tangent is the forward's product without the bias; the kernel term is the
            // parameter gradient's product (see `DoubleBackwardLayer`).
            return forwardFLOPs(batch: batch) + backwardFLOPs(batch: batch, parameterGradients: true, inputGradient: false)
        }
    }
}

/// One pass of one layer, as `Sequential` runs it.
public enum LayerPass: Hashable, Sendable {
    case forward
    /// A backward pass and what it computes.
    case backward(parameterGradients: Bool, inputGradient: Bool)
    /// The second half of double backpropagation (`DoubleBackwardLayer`).
    case doubleBackward
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

/// Scratch that lives only while one forward or backward call runs, such as the im2col columns
/// of a transposed convolution (cuDNN's "workspace"). Calls run one at a time, so one buffer of
/// the largest need serves every layer that reserves in it, in any number of networks: the GAN's
/// generator and discriminator share one.
public final class Workspace {
    private var buffer = LayerBuffer()

    public init() {}

    deinit { buffer.free() }

    /// Grows the workspace to at least `count` floats. Layers call it from `allocate`; the
    /// address may change then, so they read `base` in each call.
    public func reserve(_ count: Int) { buffer.reserve(count) }

    /// The scratch: its contents are undefined at the start of every call.
    public var base: UnsafeMutablePointer<Float> { buffer.base }
    /// Floats reserved: the largest need of any layer that reserved in it.
    public var capacity: Int { buffer.capacity }
}

/// The memory the layers of one network take instead of owning it, because each piece is live
/// only for part of a step (`Sequential` sizes it for its layers):
///
/// - The workspace (see `Workspace`), possibly shared with other networks.
/// - The input gradients. Layer i's ∂loss/∂input is live from its backward until layer i-1 has
///   read it in its own backward, so two buffers serve the whole network: each layer writes into
///   the one that does not hold the ∂loss/∂output it reads (a layer that moves no data, `Reshape`,
///   hands that on unchanged). One buffer per layer would keep every layer's gradient until the
///   next step, about 23 MB in the DCGAN generator at batch 64 instead of 6.4.
public final class NetworkMemory {
    public let workspace: Workspace
    private var first = LayerBuffer(), second = LayerBuffer()

    public init(workspace: Workspace = Workspace()) { self.workspace = workspace }

    deinit { first.free(); second.free() }

    /// Floats in each of the two input gradient buffers: the largest layer input.
    public var inputGradientCapacity: Int { first.capacity }

    /// Grows both input gradient buffers to at least `count` floats (from `allocate`).
    public func reserveInputGradient(_ count: Int) {
        first.reserve(count)
        second.reserve(count)
    }

    /// The buffer a layer writes ∂loss/∂input into, given the ∂loss/∂output it reads: the second
    /// buffer when `outputGradient` lies in the first, else the first (also when it lies outside,
    /// in the caller's or another network's memory).
    public func inputGradient(avoiding outputGradient: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        let start = UnsafePointer(first.base)
        return (start ..< start + first.capacity).contains(outputGradient) ? second.base : first.base
    }
}
