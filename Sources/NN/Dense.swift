import Kernels

/// A fully connected layer: `y = x · W + b`.
///
/// Shapes: x is `batch x inputs`, W is `inputs x outputs` (the Keras kernel layout), b is
/// `outputs`, y is `batch x outputs`. The bias is optional (the DCGAN's first layer has none).
public final class Dense: Layer {
    public let inputCount: Int
    public let outputCount: Int
    public let useBias: Bool
    private let backend: Backend

    private var weights: KernelAndBias

    private var output = LayerBuffer()
    private var memory: NetworkMemory!
    private var lastInput: UnsafePointer<Float>?

    public init(_ inputs: Int, _ outputs: Int, bias: Bool = true, backend: Backend) {
        inputCount = inputs
        outputCount = outputs
        useBias = bias
        weights = KernelAndBias(kernelShape: [inputs, outputs], biasCount: bias ? outputs : nil)
        self.backend = backend
    }

    deinit { output.free() }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        weights.declare(prefix: prefix, in: &layout)
    }

    public func bind(to store: ParameterStore) { weights.bind(to: store) }

    public func initializeParameters(random: RandomStream) { weights.initialize(random: random) }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * outputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        self.memory = memory
    }

    /// `batch x inputs x outputs` multiply-adds.
    public func forwardFLOPs(batch: Int) -> Int { 2 * batch * inputCount * outputCount }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        backend.gemm(transposeA: false, transposeB: false, m: batch, n: outputCount, k: inputCount,
                     a: input, lda: inputCount, b: weights.kernel, ldb: outputCount,
                     c: output.base, ldc: outputCount, accumulate: false)
        if let bias = weights.bias { backend.addBias(bias, to: output.base, rows: batch, columns: outputCount) }
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        if parameterGradients {
            // dW (inputs x outputs) += xᵀ · dy
            backend.gemm(transposeA: true, transposeB: false, m: inputCount, n: outputCount, k: batch,
                         a: lastInput!, lda: inputCount, b: dy, ldb: outputCount,
                         c: weights.kernelGradient, ldc: outputCount, accumulate: true)
            if let biasGradient = weights.biasGradient {
                backend.accumulateBiasGradient(dy, rows: batch, columns: outputCount, into: biasGradient)
            }
        }
        guard needInputGradient else { return nil }
        // dx (batch x inputs) = dy · Wᵀ
        let dx = memory.inputGradient(avoiding: dy)
        backend.gemm(transposeA: false, transposeB: true, m: batch, n: inputCount, k: outputCount,
                     a: dy, lda: outputCount, b: weights.kernel, ldb: outputCount,
                     c: dx, ldc: inputCount, accumulate: false)
        return UnsafePointer(dx)
    }
}

extension Dense: DoubleBackwardLayer {
    /// Backward is dx = dy · Wᵀ: ∂P/∂dy = u · W (forward without the bias), ∂P/∂W = uᵀ · dy.
    public func backwardOfInputGradient(_ u: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                                        batch: Int, into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        backend.gemm(transposeA: true, transposeB: false, m: inputCount, n: outputCount, k: batch,
                     a: u, lda: inputCount, b: dy, ldb: outputCount,
                     c: weights.kernelGradient, ldc: outputCount, accumulate: true)
        backend.gemm(transposeA: false, transposeB: false, m: batch, n: outputCount, k: inputCount,
                     a: u, lda: inputCount, b: weights.kernel, ldb: outputCount,
                     c: output, ldc: outputCount, accumulate: false)
        return UnsafePointer(output)
    }
}
