import Kernels

/// `y = x > 0 ? x : slope · x`, elementwise. Slope 0.01 in the MLP GAN, 0.3 (the Keras
/// default) in the DCGAN.
public final class LeakyReLU: Layer {
    public let inputCount: Int
    public var outputCount: Int { inputCount }
    public let slope: Float
    private let backend: Backend
    private var output = LayerBuffer()
    private var memory: NetworkMemory!
    private var lastInput: UnsafePointer<Float>?

    public init(_ count: Int, slope: Float, backend: Backend) {
        inputCount = count
        self.slope = slope
        self.backend = backend
    }

    deinit { output.free() }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * inputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        self.memory = memory
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        backend.leakyReLU(input, output.base, count: batch * inputCount, slope: slope)
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        let dx = memory.inputGradient(avoiding: dy)
        backend.leakyReLUBackward(lastInput!, dy, dx, count: batch * inputCount, slope: slope)
        return UnsafePointer(dx)
    }
}

extension LeakyReLU: DoubleBackwardLayer {
    /// Backward is dx = f'(x) ⊙ dy with f' piecewise constant (1 or the slope): ∂P/∂dy =
    /// f'(x) ⊙ u, the same elementwise map; no parameters, and f'' = 0 away from the kink.
    public func backwardOfInputGradient(_ u: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                                        batch: Int, into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        backend.leakyReLUBackward(lastInput!, u, output, count: batch * inputCount, slope: slope)
        return UnsafePointer(output)
    }
}

/// `y = tanh(x)`, elementwise: the generator's output, in [-1, 1] like the scaled pixels.
public final class Tanh: Layer {
    public let inputCount: Int
    public var outputCount: Int { inputCount }
    private let backend: Backend
    private var output = LayerBuffer()
    private var memory: NetworkMemory!

    public init(_ count: Int, backend: Backend) {
        inputCount = count
        self.backend = backend
    }

    deinit { output.free() }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * inputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        self.memory = memory
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        backend.tanh(input, output.base, count: batch * inputCount)
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        // The derivative comes from the saved output: 1 - tanh².
        let dx = memory.inputGradient(avoiding: dy)
        backend.tanhBackward(output.base, dy, dx, count: batch * inputCount)
        return UnsafePointer(dx)
    }
}
