import Kernels

/// The parameters of Dense, Conv2D and ConvTranspose2D: a kernel tensor and an optional bias,
/// as views into the network's flat parameter and gradient buffers.
///
/// Initialized as Keras does: Glorot-uniform kernel with Keras's fans (the receptive field is
/// the product of all but the last two dimensions, fanIn = shape[-2]·receptive,
/// fanOut = shape[-1]·receptive), zero bias.
struct KernelAndBias {
    let kernelShape: [Int]
    /// Values in the bias, or nil for a layer without one.
    let biasCount: Int?
    private var kernelOffset = 0, biasOffset = 0
    private(set) var kernel: UnsafeMutablePointer<Float>!, kernelGradient: UnsafeMutablePointer<Float>!
    private(set) var bias: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?

    init(kernelShape: [Int], biasCount: Int?) {
        self.kernelShape = kernelShape
        self.biasCount = biasCount
    }

    mutating func declare(prefix: String, in layout: inout ParameterLayout) {
        kernelOffset = layout.declare(prefix + "kernel", shape: kernelShape)
        if let biasCount { biasOffset = layout.declare(prefix + "bias", shape: [biasCount]) }
    }

    mutating func bind(to store: ParameterStore) {
        kernel = store.values.baseAddress! + kernelOffset
        kernelGradient = store.gradients.baseAddress! + kernelOffset
        if biasCount != nil {
            bias = store.values.baseAddress! + biasOffset
            biasGradient = store.gradients.baseAddress! + biasOffset
        }
    }

    func initialize(random: RandomStream) {
        precondition(kernelShape.count >= 2, "Glorot fans need at least two dimensions")
        let receptive = kernelShape.dropLast(2).reduce(1, *)
        let fanIn = kernelShape[kernelShape.count - 2] * receptive, fanOut = kernelShape[kernelShape.count - 1] * receptive
        let limit = (6 / Float(fanIn + fanOut)).squareRoot()
        random.fillUniform(kernel, count: kernelShape.reduce(1, *), low: -limit, high: limit)
        if let bias, let biasCount { bias.update(repeating: 0, count: biasCount) }
    }
}
