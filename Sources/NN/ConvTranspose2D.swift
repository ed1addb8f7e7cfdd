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
///
/// With 16 or more input channels and filters the layer runs tap by tap (`ConvolutionTaps`
/// of the adjoint convolution: forward is its input gradient, the input gradient its forward),
/// which skips the products that col2im would drop in the padding: a third of them for the
/// 7 x 7, stride-1 layer. With fewer (the generator's last layer, one filter) im2col runs.
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

    private var output = LayerBuffer()
    /// im2col only: columns (`batch·H·W x k·k·filters`, 40 MB for the DCGAN's 7x7 256 -> 128
    /// layer at batch 64) are x · Kᵀ in the forward pass, dead after col2im, and im2col(dy) in
    /// the backward pass, dead when it returns: they live in `memory.workspace`.
    private var memory: NetworkMemory!
    private var lastInput: UnsafePointer<Float>?
    private let tapwise: Bool
    private var tapTable: ConvolutionTaps?
    private var maxBatch = 0

    public init(inputHeight: Int, inputWidth: Int, inputChannels: Int, filters: Int,
                kernelSize: Int, stride: Int = 1, bias: Bool = true,
                algorithm: ConvolutionAlgorithm = .automatic, backend: Backend) {
        precondition(inputChannels > 0, "empty transposed-convolution input")
        geometry = .same(inputHeight: inputHeight * stride, inputWidth: inputWidth * stride, channels: filters,
                         kernelSize: kernelSize, stride: stride)
        assert(geometry.outputHeight == inputHeight && geometry.outputWidth == inputWidth)
        self.inputChannels = inputChannels
        useBias = bias
        let k = kernelSize
        weights = KernelAndBias(kernelShape: [k, k, filters, inputChannels], biasCount: bias ? filters : nil)
        self.backend = backend
        switch algorithm {
        case .automatic: tapwise = ConvolutionAlgorithm.tapsPay(channels: inputChannels, filters: filters)
        case .im2col: tapwise = false
        case .taps: tapwise = true
        }
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
        if tapwise {
            if maxBatch > self.maxBatch {
                tapTable = ConvolutionTaps(geometry: geometry, filters: inputChannels, maxBatch: maxBatch)
            }
        } else {
            memory.workspace.reserve(maxBatch * geometry.outputPixels * geometry.columnCount)
        }
        self.maxBatch = max(self.maxBatch, maxBatch)
        self.memory = memory
    }

    /// The count of its adjoint convolution (see `Conv2D.forwardFLOPs`): `batch · validTapPairs ·
    /// filters · inputChannels` multiply-adds; the taps col2im would drop at the border do not count.
    public func forwardFLOPs(batch: Int) -> Int { 2 * batch * geometry.validTapPairs * filters * inputChannels }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        lastInput = input
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        if let tapTable {
            tapTable.inputGradient(input, kernel: weights.kernel, batch: batch, into: output.base, backend: backend)
        } else {
            // columns (rows x n) = x (rows x inputChannels) · Kᵀ, then y = col2im(columns)
            let columns = memory.workspace.base
            backend.gemm(transposeA: false, transposeB: true, m: rows, n: n, k: inputChannels,
                         a: input, lda: inputChannels, b: weights.kernel, ldb: inputChannels,
                         c: columns, ldc: n, accumulate: false)
            backend.col2im(geometry, columns, batch: batch, into: output.base)
        }
        if let bias = weights.bias { backend.addBias(bias, to: output.base, rows: batch * geometry.inputHeight * geometry.inputWidth,
                                      columns: filters) }
        return UnsafePointer(output.base)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        let rows = batch * geometry.outputPixels, n = geometry.columnCount
        guard parameterGradients || needInputGradient else { return nil }
        if let tapTable {
            if parameterGradients {
                tapTable.kernelGradient(dy, lastInput!, batch: batch, into: weights.kernelGradient, backend: backend)
                if let biasGradient = weights.biasGradient {
                    backend.accumulateBiasGradient(dy, rows: batch * geometry.inputHeight * geometry.inputWidth,
                                                   columns: filters, into: biasGradient)
                }
            }
            guard needInputGradient else { return nil }
            let dx = memory.inputGradient(avoiding: dy)
            tapTable.forward(dy, kernel: weights.kernel, batch: batch, into: dx, backend: backend)
            return UnsafePointer(dx)
        }
        let columns = memory.workspace.base
        backend.im2col(geometry, dy, batch: batch, into: columns)
        if parameterGradients {
            // dK (n x inputChannels) += im2col(dy)ᵀ · x
            backend.gemm(transposeA: true, transposeB: false, m: n, n: inputChannels, k: rows,
                         a: columns, lda: n, b: lastInput!, ldb: inputChannels,
                         c: weights.kernelGradient, ldc: inputChannels, accumulate: true)
            if let biasGradient = weights.biasGradient {
                backend.accumulateBiasGradient(dy, rows: batch * geometry.inputHeight * geometry.inputWidth,
                                               columns: filters, into: biasGradient)
            }
        }
        guard needInputGradient else { return nil }
        // dx (rows x inputChannels) = im2col(dy) · K: the "same" convolution of dy.
        let dx = memory.inputGradient(avoiding: dy)
        backend.gemm(transposeA: false, transposeB: false, m: rows, n: inputChannels, k: n,
                     a: columns, lda: n, b: weights.kernel, ldb: inputChannels,
                     c: dx, ldc: inputChannels, accumulate: false)
        return UnsafePointer(dx)
    }
}
