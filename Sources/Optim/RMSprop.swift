import Kernels

/// RMSprop over one flat parameter buffer, in PyTorch's form (the WGAN paper's code):
///
///     s ← ρs + (1-ρ)g²,   θ ← θ - lr · g / (√s + ε)
///
/// The WGAN paper prefers it to momentum methods for the clipped critic (section 3).
public final class RMSprop: Optimizer {
    public let config: OptimizerConfig
    public let count: Int
    /// The running mean of squared gradients, one per parameter.
    public let meanSquare: UnsafeMutableBufferPointer<Float>
    public var stepCount: Int = 0
    private let backend: Backend

    public init(count: Int, config: OptimizerConfig, backend: Backend) {
        self.count = count
        self.config = config
        self.backend = backend
        meanSquare = .allocate(capacity: count)
        meanSquare.initialize(repeating: 0)
    }

    deinit { meanSquare.deallocate() }

    public var state: [(name: String, values: UnsafeMutableBufferPointer<Float>)] { [("rmsprop.s", meanSquare)] }

    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>) {
        stepCount += 1
        backend.parallelFor(count, granularity: 4096, cost: 8,
                            RMSpropUpdate(parameters: parameters, gradients: gradients, meanSquare: meanSquare.baseAddress!,
                                          rho: config.rho, learningRate: config.learningRate, epsilon: config.epsilon))
    }
}

/// One range of RMSprop's update, eight values at a time.
struct RMSpropUpdate: RangeWork {
    let parameters: UnsafeMutablePointer<Float>
    let gradients: UnsafePointer<Float>
    let meanSquare: UnsafeMutablePointer<Float>
    let rho, learningRate, epsilon: Float

    func callAsFunction(_ range: Range<Int>) {
        var i = range.lowerBound
        let end = range.upperBound
        func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
        func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
        while i + 8 <= end {
            let g = load(gradients + i)
            let s = rho * load(meanSquare + i) + (1 - rho) * g * g
            store(s, meanSquare + i)
            store(load(parameters + i) - learningRate * g / (s.squareRoot() + epsilon), parameters + i)
            i += 8
        }
        while i < end {
            let g = gradients[i]
            let s = rho * meanSquare[i] + (1 - rho) * g * g
            meanSquare[i] = s
            parameters[i] -= learningRate * g / (s.squareRoot() + epsilon)
            i += 1
        }
    }
}
