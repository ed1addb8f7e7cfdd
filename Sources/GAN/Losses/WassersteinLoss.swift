import Kernels
import NN

/// The Wasserstein GAN's losses on critic values (no sigmoid): the critic minimizes
/// mean D(G(z)) − mean D(x), so that −(its loss) estimates the Wasserstein-1 distance when D
/// is 1-Lipschitz; the generator minimizes −mean D(G(z)) (Arjovsky et al. 2017, Algorithm 1).
///
/// The Lipschitz constraint is weight clipping (`clipValue`, after each critic update) for
/// WGAN, or the gradient penalty (`GradientPenalty`, a term the trainer adds) for WGAN-GP.
final class WassersteinLoss: AdversarialLoss {
    private let backend: Backend
    let clipValue: Float?

    init(maxBatch: Int, clipValue: Float?, backend: Backend) {
        self.backend = backend
        self.clipValue = clipValue
    }

    func discriminator(_ values: UnsafePointer<Float>, on input: DiscriminatorInput, count: Int,
                       gradient: UnsafeMutablePointer<Float>) -> Double {
        // Real images: −mean D(x); generated: +mean D(G(z)).
        let sign: Float = input == .real ? -1 : 1
        gradient.update(repeating: sign / Float(count), count: count)
        return Double(sign) * score(values, count: count)
    }

    func generator(_ values: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
        gradient.update(repeating: -1 / Float(count), count: count)
        return -score(values, count: count)
    }

    func score(_ values: UnsafePointer<Float>, count: Int) -> Double {
        backend.sum(values, count: count) / Double(count)
    }

    /// WGAN: every critic parameter clipped to [−c, c].
    func discriminatorUpdated(_ discriminator: Sequential) {
        guard let c = clipValue else { return }
        let values = discriminator.parameters.values
        for i in values.indices { values[i] = min(max(values[i], -c), c) }
    }
}
