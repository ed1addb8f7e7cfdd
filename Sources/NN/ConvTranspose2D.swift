import Kernels

/// Keras `Conv2DTranspose` with `padding="same"`: `y = col2im(x · Kᵀ) + b`.
///
/// It is exactly the adjoint (the input gradient) of the "same" `Conv2D` that maps a
/// `H·stride x W·stride x filters` image to `H x W x inputChannels` with the same kernel,
/// which is how TensorFlow defines `conv2d_transpose`. `geometry` is that convolution's.
///
/// Shapes (NHWC): x is `batch x H x W x inputChannels`, y is `batch x H·stride x W·stride x
/// filters` (7 -> 14 -> 28 at stride 2, 7 -> 7 at stride 1). K is `[k, k, filters,
/// inputChannels]` (the Keras layout, which is also the layout of the adjoint convolution's
/// kernel: a `k·k·filters x inputChannels` matrix), b is `filters`.
/// The forward multiply has M = batch·H·W rows, N = k·k·filters, K = inputChannels, so even
/// the generator's last layer (filters = 1) has N = 25 for a 5 x 5 kernel.
public final class ConvTranspose2D: Layer {
    public let geometry: ConvolutionGeometry
    public let inputChannels: Int
    public var filters: Int { geometry.channels }
    public let useBias: Bool
    public var inputCount: Int { geometry.outputPixels * inputChannels }
    public var outputCount: Int { geometry.inputCount }
    public var outputHeight: Int { geometry.inputHeight }
    public var outputWidth: Int { geometry.inputWidth }
    private let backend: Backend

    private var weights: KernelAndBias

    private var output = LayerBuffer(), inputGradient = LayerBuffer()
    /// x · Kᵀ in the forward pass; im2col(dy) in the backward pass.
    private var columns = LayerBuffer()
    private var lastInput: UnsafePointer<Float>?

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, filters: Int,
                kernelSize: Int, stride: Int = 1, bias: Bool = true, backend: Backend) {
        precondition(inputChannels > 0, "empty transposed-convolution input")
        geometry = .same(inputHeight: inputHeight * stride, inputWidth: inputWidth * stride, channels: filters,
                         kernelSize: kernelSize, stride: stride)
        assert(geometry.outputHeight == inputHeight && geometry.outputWidth == inputWidth)
        self.inputChannels = inputChannels
        useBias = bias
        let k = kernelSize
        weights = KernelAndBias(kernelShape: [k, k, filters, inputChannels], biasCount: bias ? filters : nil)
        self.backend = backend
    }

    deinit { output.free(); inputGradient.free(); columns.free() }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        weights.declare(prefix: prefix, in: &layout)
    }

    public func bind(to store: ParameterStore) { weights.bind(to: store) }

    public func initializeParameters(random: RandomStream) { weights.initialize(random: random) }

    public func allocate(maxBatch: Int) {
        output.reserve(maxBatch * outputCount)
        inputGradient.reserve(maxBatch * inputCount)
        columns.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        // columns (rows x n) = x (rows x inputChannels) · Kᵀ, then y = col2im(columns)
        backend.gemm(transposeA: false, transposeB: true, m: rows, n: n, k: inputChannels,
                     a: input, lda: inputChannels, b: weights.kernel, ldb: inputChannels,
                     c: columns.base, ldc: n, accumulate: false)
        backend.col2im(geometry, columns.base, batch: batch, into: output.base)
        if let bias = weights.bias { backend.addBias(bias, to: output.base, rows: batch * geometry.inputHeight * geometry.inputWidth,
                                      columns: filters) }
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        guard parameterGradients || needInputGradient else { return nil }
        backend.im2col(geometry, dy, batch: batch, into: columns.base)
        if parameterGradients {
            // dK (n x inputChannels) += im2col(dy)ᵀ · x
            backend.gemm(transposeA: true, transposeB: false, m: n, n: inputChannels, k: rows,
                         a: columns.base, lda: n, b: lastInput!, ldb: inputChannels,
                         c: weights.kernelGradient, ldc: inputChannels, accumulate: true)
            if let biasGradient = weights.biasGradient {
                backend.accumulateBiasGradient(dy, rows: batch * geometry.inputHeight * geometry.inputWidth,
                                               columns: filters, into: biasGradient)
            }
        }
        guard needInputGradient else { return nil }
        // dx (rows x inputChannels) = im2col(dy) · K: the "same" convolution of dy.
        backend.gemm(transposeA: false, transposeB: false, m: rows, n: inputChannels, k: n,
                     a: columns.base, lda: n, b: weights.kernel, ldb: inputChannels,
                     c: inputGradient.base, ldc: inputChannels, accumulate: false)
        return UnsafePointer(inputGradient.base)
    }
}
