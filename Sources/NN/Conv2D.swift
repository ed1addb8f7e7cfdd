import Kernels

/// A 2-D convolution with Keras `padding="same"`: `y = im2col(x) · K + b`.
///
/// Shapes (NHWC, see `ConvolutionGeometry`): x is `batch x H x W x inputChannels`, y is
/// `batch x ceil(H / stride) x ceil(W / stride) x filters`, K is `[k, k, inputChannels, filters]`
/// (the Keras kernel layout, a `k·k·inputChannels x filters` matrix), b is `filters`.
/// The multiply has M = batch·outH·outW rows (large), N = filters, K = k·k·inputChannels.
public final class Conv2D: Layer {
    public let geometry: ConvolutionGeometry
    public let filters: Int
    public let useBias: Bool
    public var inputCount: Int { geometry.inputCount }
    public var outputCount: Int { geometry.outputPixels * filters }
    public var outputHeight: Int { geometry.outputHeight }
    public var outputWidth: Int { geometry.outputWidth }
    private let backend: Backend

    private var weights: KernelAndBias

    private var output = LayerBuffer(), inputGradient = LayerBuffer()
    /// im2col of the last input, kept for the kernel gradient; and ∂loss/∂columns.
    private var columns = LayerBuffer(), columnGradient = LayerBuffer()

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, filters: Int,
                kernelSize: Int, stride: Int = 1, bias: Bool = true, backend: Backend) {
        precondition(filters > 0, "a convolution needs at least one filter")
        geometry = .same(inputHeight: inputHeight, inputWidth: inputWidth, channels: inputChannels,
                         kernelSize: kernelSize, stride: stride)
        self.filters = filters
        useBias = bias
        let k = kernelSize
        weights = KernelAndBias(kernelShape: [k, k, geometry.channels, filters], biasCount: bias ? filters : nil)
        self.backend = backend
    }

    deinit { output.free(); inputGradient.free(); columns.free(); columnGradient.free() }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        weights.declare(prefix: prefix, in: &layout)
    }

    public func bind(to store: ParameterStore) { weights.bind(to: store) }

    public func initializeParameters(random: RandomStream) { weights.initialize(random: random) }

    public func allocate(maxBatch: Int) {
        output.reserve(maxBatch * outputCount)
        inputGradient.reserve(maxBatch * inputCount)
        columns.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
        columnGradient.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        backend.im2col(geometry, input, batch: batch, into: columns.base)
        // y (rows x filters) = columns (rows x n) · K (n x filters)
        backend.gemm(transposeA: false, transposeB: false, m: rows, n: filters, k: n,
                     a: columns.base, lda: n, b: weights.kernel, ldb: filters,
                     c: output.base, ldc: filters, accumulate: false)
        if let bias = weights.bias { backend.addBias(bias, to: output.base, rows: rows, columns: filters) }
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        if parameterGradients {
            // dK (n x filters) += columnsᵀ · dy
            backend.gemm(transposeA: true, transposeB: false, m: n, n: filters, k: rows,
                         a: columns.base, lda: n, b: dy, ldb: filters,
                         c: weights.kernelGradient, ldc: filters, accumulate: true)
            if let biasGradient = weights.biasGradient {
                backend.accumulateBiasGradient(dy, rows: rows, columns: filters, into: biasGradient)
            }
        }
        guard needInputGradient else { return nil }
        // dcolumns (rows x n) = dy · Kᵀ, then dx = col2im(dcolumns)
        backend.gemm(transposeA: false, transposeB: true, m: rows, n: n, k: filters,
                     a: dy, lda: filters, b: weights.kernel, ldb: filters,
                     c: columnGradient.base, ldc: n, accumulate: false)
        backend.col2im(geometry, columnGradient.base, batch: batch, into: inputGradient.base)
        return UnsafePointer(inputGradient.base)
    }
}
