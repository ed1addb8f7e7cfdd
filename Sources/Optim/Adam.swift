import Kernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam hyper-parameters (Kingma & Ba, 2015). The defaults are Keras's, which the seeds use.
public struct AdamConfig: Sendable, Equatable, Codable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

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
/// optimizer is two copies and `step` is one vectorized loop.
public final class Adam {
    public let config: AdamConfig
    public let count: Int
    /// First and second moment estimates, one per parameter.
    public let m: UnsafeMutableBufferPointer<Float>
    public let v: UnsafeMutableBufferPointer<Float>
    /// Number of steps taken (t in the formulas above).
    public var stepCount: Int = 0

    /// Splits the update over the backend's threads (each value's update is its own, so the
    /// result is the same on any number); nil: the caller's thread alone.
    let backend: Backend?

    public init(count: Int, config: AdamConfig, backend: Backend? = nil) {
        self.count = count
        self.config = config
        self.backend = backend
        m = .allocate(capacity: count); m.initialize(repeating: 0)
        v = .allocate(capacity: count); v.initialize(repeating: 0)
    }

    deinit { m.deallocate(); v.deallocate() }

    /// Applies one update to `parameters` from `gradients` (both `count` values).
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>) {
        stepCount += 1
        let t = Double(stepCount)
        // Bias corrections in Double: β₂ᵗ is close to 1 for thousands of steps.
        let correction1 = Float(1 - pow(Double(config.beta1), t))
        let correction2 = Float(1 - pow(Double(config.beta2), t))
        let update = AdamUpdate(config: config, stepSize: config.learningRate * correction2.squareRoot() / correction1,
                                parameters: parameters, gradients: gradients, m: m.baseAddress!, v: v.baseAddress!)
        if let backend {
            // Five streams per value and a division: about two leakyReLUs' worth.
            backend.parallelFor(count, granularity: 16, cost: 2, update)
        } else {
            update(0 ..< count)
        }
    }
}

/// Adam's update of the values in a range (a value for `Backend.parallelFor`).
struct AdamUpdate: RangeWork {
    let b1: SIMD8<Float>, b2: SIMD8<Float>, c1: SIMD8<Float>, c2: SIMD8<Float>, stepSize: SIMD8<Float>, eps: SIMD8<Float>
    let parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>

    init(config: AdamConfig, stepSize: Float, parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
         m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        b1 = SIMD8(repeating: config.beta1); b2 = SIMD8(repeating: config.beta2)
        c1 = SIMD8(repeating: 1 - config.beta1); c2 = SIMD8(repeating: 1 - config.beta2)
        self.stepSize = SIMD8(repeating: stepSize)
        eps = SIMD8(repeating: config.epsilon)
        self.parameters = parameters
        self.gradients = gradients
        self.m = m
        self.v = v
    }

    @inline(__always) func update(_ g: SIMD8<Float>, _ p: SIMD8<Float>,
                                  _ m0: SIMD8<Float>, _ v0: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let m1 = b1 * m0 + c1 * g
        let v1 = b2 * v0 + c2 * g * g
        let p1 = p - stepSize * m1 / (v1.squareRoot() + eps)
        return (p1, m1, v1)
    }

    func callAsFunction(_ range: Range<Int>) {
        let (parameters, gradients, mp, vp) = (self.parameters, self.gradients, m, v)
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            let (p1, m1, v1) = update(load(gradients + i), load(parameters + i), load(mp + i), load(vp + i))
            store(p1, parameters + i); store(m1, mp + i); store(v1, vp + i)
            i += 8
        }
        // The tail runs the same vector arithmetic on padded lanes, so results do not depend
        // on where the buffer (or a thread's range) ends.
        if i < end {
            var g = SIMD8<Float>(), p = g, m0 = g, v0 = g
            for j in 0..<(end - i) { g[j] = gradients[i + j]; p[j] = parameters[i + j]; m0[j] = mp[i + j]; v0[j] = vp[i + j] }
            let (p1, m1, v1) = update(g, p, m0, v0)
            for j in 0..<(end - i) { parameters[i + j] = p1[j]; mp[i + j] = m1[j]; vp[i + j] = v1[j] }
        }
    }

    @inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private func store(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD8<Float>.self)
    }
}
