import Kernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam over one flat parameter buffer, with bias correction in the form Keras and TensorFlow
/// use (Kingma & Ba's "efficient" form, section 2), so runs follow the seeds' arithmetic:
///
///     m ← β₁m + (1-β₁)g,   v ← β₂v + (1-β₂)g²,   t ← t+1
///     θ ← θ - lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)
///
/// (PyTorch adds ε to √v̂ instead; the two differ where |g| is near ε·√(1-β₂ᵗ)⁻¹, which for
/// the DCGAN's small early gradients changes the first steps' updates by up to 20 %.)
///
/// The moments `m` and `v` are flat buffers with the parameters' layout, so saving the
/// optimizer is two copies and `step` is one vectorized kernel (`Backend.adamUpdate`).
public final class Adam: Optimizer {
    public let config: OptimizerConfig
    public let count: Int
    /// First and second moment estimates, one per parameter.
    public let m: UnsafeMutableBufferPointer<Float>
    public let v: UnsafeMutableBufferPointer<Float>
    /// Number of steps taken (t in the formulas above).
    public var stepCount: Int = 0

    private let backend: Backend

    public init(count: Int, config: OptimizerConfig, backend: Backend) {
        self.count = count
        self.config = config
        self.backend = backend
        m = .allocate(capacity: count); m.initialize(repeating: 0)
        v = .allocate(capacity: count); v.initialize(repeating: 0)
    }

    deinit { m.deallocate(); v.deallocate() }

    public var state: [(name: String, values: UnsafeMutableBufferPointer<Float>)] { [("adam.m", m), ("adam.v", v)] }

    /// Applies one update to `parameters` from `gradients` (both `count` values).
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>) {
        stepCount += 1
        let t = Double(stepCount)
        // Bias corrections in Double: β₂ᵗ is close to 1 for thousands of steps.
        let correction1 = Float(1 - pow(Double(config.beta1), t))
        let correction2 = Float(1 - pow(Double(config.beta2), t))
        backend.adamUpdate(parameters: parameters, gradients: gradients, m: m.baseAddress!, v: v.baseAddress!,
                           count: count, beta1: config.beta1, beta2: config.beta2,
                           stepSize: config.learningRate * correction2.squareRoot() / correction1,
                           epsilon: config.epsilon)
    }
}
