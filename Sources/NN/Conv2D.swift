import Kernels

/// How a convolution layer multiplies: one im2col matrix times the kernel, or kernel tap by
/// kernel tap (`ConvolutionTaps`). `automatic` takes the taps where each tap's multiply is
/// wide enough for the register tile; tests force each to compare them.
public enum ConvolutionAlgorithm: Sendable {
    case automatic, im2col, taps

    /// Both the channels and the filters (a tap's K and N, or N and K) at least 16.
    static func tapsPay(channels: Int, filters: Int) -> Bool { channels >= 16 && filters >= 16 }
}

/// A 2-D convolution with Keras `padding="same"`: `y = im2col(x) · K + b`.
///
/// Shapes (NHWC, see `ConvolutionGeometry`): x is `batch x H x W x inputChannels`, y is
/// `batch x ceil(H / stride) x ceil(W / stride) x filters`, K is `[k, k, inputChannels, filters]`
/// (the Keras kernel layout, a `k·k·inputChannels x filters` matrix), b is `filters`.
/// The multiply has M = batch·outH·outW rows (large), N = filters, K = k·k·inputChannels.
///
/// With 16 or more input channels and filters the layer runs tap by tap (`ConvolutionTaps`:
/// no products in the padding, no column matrix); with fewer (the first layer of D, one input
/// channel) a tap's multiply would be too thin for the register tile, and im2col runs.
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
    /// im2col only: the im2col of the last input, kept from forward for the kernel gradient
    /// (`batch·outH·outW x k·k·inputChannels`). ∂loss/∂columns, the same size, is dead once
    /// col2im has summed it into dx, so it lives in `memory.workspace`.
    private var columns = LayerBuffer()
    private var memory: NetworkMemory!
    /// The tap-by-tap path reads the last input again for the kernel gradient.
    private var lastInput: UnsafePointer<Float>?
    private var maxBatch = 0

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, filters: Int,
                kernelSize: Int, stride: Int = 1, bias: Bool = true,
                algorithm: ConvolutionAlgorithm = .automatic, backend: Backend) {
        precondition(filters > 0, "a convolution needs at least one filter")
        geometry = .same(inputHeight: inputHeight, inputWidth: inputWidth, channels: inputChannels,
                         kernelSize: kernelSize, stride: stride)
        self.filters = filters
        useBias = bias
        let k = kernelSize
        weights = KernelAndBias(kernelShape: [k, k, geometry.channels, filters], biasCount: bias ? filters : nil)
        self.backend = backend
        switch algorithm {
        case .automatic: tapwise = ConvolutionAlgorithm.tapsPay(channels: inputChannels, filters: filters)
        case .im2col: tapwise = false
        case .taps: tapwise = true
        }
    }

    private let tapwise: Bool
    private var tapTable: ConvolutionTaps?

    deinit { output.free(); columns.free() }

    public func declareParameters(prefix: String, in layout: inout ParameterLayout) {
        weights.declare(prefix: prefix, in: &layout)
    }

    public func bind(to store: ParameterStore) { weights.bind(to: store) }

    public func initializeParameters(random: RandomStream) { weights.initialize(random: random) }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * outputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        if tapwise {
            if maxBatch > self.maxBatch { tapTable = ConvolutionTaps(geometry: geometry, filters: filters, maxBatch: maxBatch) }
        } else {
            columns.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
            memory.workspace.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
        }
        self.maxBatch = max(self.maxBatch, maxBatch)
        self.memory = memory
    }

    /// `batch · validTapPairs · inputChannels · filters` multiply-adds: every tap of every output
    /// pixel that lands inside the image. Taps in the padding multiply zeros and do not count
    /// (im2col runs them, the tap-by-tap path does not), so achieved GFLOP/s is useful work and
    /// can be held against the FMA peak. The common count (every tap, k² per output pixel) is
    /// larger by `outputPixels · k² / validTapPairs`: 1.46 for 5 x 5 taps on 7 x 7 images.
    public func forwardFLOPs(batch: Int) -> Int { 2 * batch * geometry.validTapPairs * geometry.channels * filters }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        lastInput = input
        if let tapTable {
            tapTable.forward(input, kernel: weights.kernel, batch: batch, into: output.base, backend: backend)
        } else {
            backend.im2col(geometry, input, batch: batch, into: columns.base)
            // y (rows x filters) = columns (rows x n) · K (n x filters)
            backend.gemm(transposeA: false, transposeB: false, m: rows, n: filters, k: n,
                         a: columns.base, lda: n, b: weights.kernel, ldb: filters,
                         c: output.base, ldc: filters, accumulate: false)
        }
        if let bias = weights.bias { backend.addBias(bias, to: output.base, rows: rows, columns: filters) }
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        if parameterGradients {
            if let tapTable {
                tapTable.kernelGradient(lastInput!, dy, batch: batch, into: weights.kernelGradient, backend: backend)
            } else {
                // dK (n x filters) += columnsᵀ · dy
                backend.gemm(transposeA: true, transposeB: false, m: n, n: filters, k: rows,
                             a: columns.base, lda: n, b: dy, ldb: filters,
                             c: weights.kernelGradient, ldc: filters, accumulate: true)
            }
            if let biasGradient = weights.biasGradient {
                backend.accumulateBiasGradient(dy, rows: rows, columns: filters, into: biasGradient)
            }
        }
        guard needInputGradient else { return nil }
        let dx = memory.inputGradient(avoiding: dy)
        if let tapTable {
            tapTable.inputGradient(dy, kernel: weights.kernel, batch: batch, into: dx, backend: backend)
            return UnsafePointer(dx)
        }
        // dcolumns (rows x n) = dy · Kᵀ, then dx = col2im(dcolumns)
        let columnGradient = memory.workspace.base
        backend.gemm(transposeA: false, transposeB: true, m: rows, n: n, k: filters,
                     a: dy, lda: filters, b: weights.kernel, ldb: filters,
                     c: columnGradient, ldc: n, accumulate: false)
        backend.col2im(geometry, columnGradient, batch: batch, into: dx)
        return UnsafePointer(dx)
    }
}

extension Conv2D: DoubleBackwardLayer {
    /// Backward is dx = col2im(dy · Kᵀ), whose adjoint is im2col: ∂P/∂dy = im2col(u) · K (the
    /// forward without the bias), ∂P/∂K = im2col(u)ᵀ · dy (the kernel gradient with u as input).
    public func backwardOfInputGradient(_ u: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                                        batch: Int, into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if let tapTable {
            tapTable.kernelGradient(u, dy, batch: batch, into: weights.kernelGradient, backend: backend)
            tapTable.forward(u, kernel: weights.kernel, batch: batch, into: output, backend: backend)
            return UnsafePointer(output)
        }
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        let columns = memory.workspace.base
        backend.im2col(geometry, u, batch: batch, into: columns)
        backend.gemm(transposeA: true, transposeB: false, m: n, n: filters, k: rows,
                     a: columns, lda: n, b: dy, ldb: filters,
                     c: weights.kernelGradient, ldc: filters, accumulate: true)
        backend.gemm(transposeA: false, transposeB: false, m: rows, n: filters, k: n,
                     a: columns, lda: n, b: weights.kernel, ldb: filters,
                     c: output, ldc: filters, accumulate: false)
        return UnsafePointer(output)
    }
}
