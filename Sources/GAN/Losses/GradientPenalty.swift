import Kernels
import NN

/// WGAN-GP's gradient penalty (Gulrajani et al. 2017, Algorithm 1): λ · mean over examples of
/// (‖∇ₓD(x̂)‖₂ − 1)², on x̂ = ε·x + (1 − ε)·G(z) with one ε ~ U[0, 1) per example.
///
/// Its gradient with respect to the critic's parameters flows back through the critic's
/// backward pass (`Sequential.backwardOfInputGradient`, double backpropagation). ε is drawn
/// per global example from a stream keyed like the noise, so N ranks mix what one rank mixes.
final class GradientPenalty {
    let weight: Float
    private let pixels: Int
    private let backend: Backend
    /// x̂ (batch x pixels), ε and ∂P/∂g (batch x pixels).
    private let interpolates, epsilon, inputGradientAdjoint: UnsafeMutableBufferPointer<Float>

    init(weight: Float, pixels: Int, maxBatch: Int, backend: Backend) {
        self.weight = weight
        self.pixels = pixels
        self.backend = backend
        interpolates = .allocate(capacity: maxBatch * pixels)
        epsilon = .allocate(capacity: maxBatch)
        inputGradientAdjoint = .allocate(capacity: maxBatch * pixels)
    }

    deinit { for b in [interpolates, epsilon, inputGradientAdjoint] { b.deallocate() } }

    /// Adds ∂(penalty)/∂θ into the critic's gradients and returns the penalty (λ included),
    /// for this rank's `batch` examples starting at global example `firstExample`.
    func addGradients(critic: Sequential, real: UnsafePointer<Float>, fake: UnsafePointer<Float>, batch: Int,
                      mixing stream: RandomStream, firstExample: Int, context: ForwardContext) -> Double {
        stream.fillUniform(epsilon.baseAddress!, count: batch, low: 0, high: 1, first: UInt64(firstExample))
        let x = interpolates.baseAddress!
        for b in 0 ..< batch {
            let e = epsilon[b], row = b * pixels
            for i in row ..< row + pixels { x[i] = e * real[i] + (1 - e) * fake[i] }
        }
        _ = critic.forward(x, batch: batch, context: context)
        let g = critic.inputGradientForDoubleBackward(batch: batch)
        // P = λ/B Σ_b (‖g_b‖ − 1)²;  ∂P/∂g_b = 2λ/B · (‖g_b‖ − 1)/‖g_b‖ · g_b.
        var penalty = 0.0
        let u = inputGradientAdjoint.baseAddress!
        for b in 0 ..< batch {
            let row = b * pixels
            var squares = 0.0
            for i in row ..< row + pixels { squares += Double(g[i]) * Double(g[i]) }
            let norm = squares.squareRoot()
            penalty += (norm - 1) * (norm - 1)
            let factor = Float(2 * Double(weight) / Double(batch) * (norm - 1) / max(norm, 1e-12))
            for i in row ..< row + pixels { u[i] = factor * g[i] }
        }
        critic.backwardOfInputGradient(u, batch: batch)
        return Double(weight) * penalty / Double(batch)
    }
}
