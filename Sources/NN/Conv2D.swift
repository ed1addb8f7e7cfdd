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

    private var output = LayerBuffer()
    /// im2col of the last input, kept from forward for the kernel gradient (`batch·outH·outW x
    /// k·k·inputChannels`). ∂loss/∂columns, the same size, is dead once col2im has summed it
    /// into dx, so it lives in `memory.workspace`.
    private var columns = LayerBuffer()
    private var memory: NetworkMemory!

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

    deinit { output.free(); columns.free() }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        weights.declare(prefix: prefix, in: &layout)
    }

    public func bind(to store: ParameterStore) { weights.bind(to: store) }

    public func initializeParameters(random: RandomStream) { weights.initialize(random: random) }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * outputCount)
        columns.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        memory.workspace.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
        self.memory = memory
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        geometry.im2col(input, batch: batch, into: columns.base)
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
        let columnGradient = memory.workspace.base, dx = memory.inputGradient(avoiding: dy)
        backend.gemm(transposeA: false, transposeB: true, m: rows, n: n, k: filters,
                     a: dy, lda: filters, b: weights.kernel, ldb: filters,
                     c: columnGradient, ldc: n, accumulate: false)
        geometry.col2im(columnGradient, batch: batch, into: dx)
        return UnsafePointer(dx)
    }
}
