import Kernels

/// `y = x > 0 ? x : slope · x`, elementwise. Slope 0.01 in the MLP GAN, 0.3 (the Keras
/// default) in the DCGAN.
public final class LeakyReLU: Layer {
    public let inputCount: Int
    public var outputCount: Int { inputCount }
    public let slope: Float
    private let backend: Backend
    private var output = LayerBuffer(), inputGradient = LayerBuffer()
    private var lastInput: UnsafePointer<Float>?

    public init(_ count: Int, slope: Float, backend: Backend) {
        inputCount = count
        self.slope = slope
        self.backend = backend
    }

    deinit { output.free(); inputGradient.free() }

    public func allocate(maxBatch: Int) {
        output.reserve(maxBatch * inputCount)
        inputGradient.reserve(maxBatch * inputCount)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        backend.leakyReLU(input, output.base, count: batch * inputCount, slope: slope)
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        backend.leakyReLUBackward(lastInput!, dy, inputGradient.base, count: batch * inputCount, slope: slope)
        return UnsafePointer(inputGradient.base)
    }
}

/// `y = tanh(x)`, elementwise: the generator's output, in [-1, 1] like the scaled pixels.
public final class Tanh: Layer {
    public let inputCount: Int
    public var outputCount: Int { inputCount }
    private let backend: Backend
    private var output = LayerBuffer(), inputGradient = LayerBuffer()

    public init(_ count: Int, backend: Backend) {
        inputCount = count
        self.backend = backend
    }

    deinit { output.free(); inputGradient.free() }

    public func allocate(maxBatch: Int) {
        output.reserve(maxBatch * inputCount)
        inputGradient.reserve(maxBatch * inputCount)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        backend.tanh(input, output.base, count: batch * inputCount)
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard needInputGradient else { return nil }
        // The derivative comes from the saved output: 1 - tanh².
        backend.tanhBackward(output.base, dy, inputGradient.base, count: batch * inputCount)
        return UnsafePointer(inputGradient.base)
    }
}
