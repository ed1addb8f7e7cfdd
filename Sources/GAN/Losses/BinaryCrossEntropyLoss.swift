import Kernels

/// The original GAN loss on D's logits (the seeds 000-002): D minimizes
/// BCE(D(x), 1 − smoothing) + BCE(D(G(z)), 0); G minimizes BCE(D(G(z)), 1), the
/// non-saturating −log D(G(z)) of Goodfellow et al., section 3.
final class BinaryCrossEntropyLoss: AdversarialLoss {
    private let backend: Backend
    /// Targets, one per example of the largest batch: real (1 − smoothing), fake (0), G's (1).
    private let real, fake, generatorTargets, scores: UnsafeMutableBufferPointer<Float>

    init(maxBatch: Int, labelSmoothing: Float, backend: Backend) {
        self.backend = backend
        func filled(_ value: Float) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: maxBatch)
            b.initialize(repeating: value)
            return b
        }
        real = filled(1 - labelSmoothing)
        fake = filled(0)
        generatorTargets = filled(1)
        scores = filled(0)
    }

    deinit { for b in [real, fake, generatorTargets, scores] { b.deallocate() } }

    func discriminator(_ logits: UnsafePointer<Float>, on input: DiscriminatorInput, count: Int,
                       gradient: UnsafeMutablePointer<Float>) -> Double {
        let targets = input == .real ? real : fake
        return backend.binaryCrossEntropyWithLogits(logits, targets: targets.baseAddress!, count: count,
                                                    scale: 1 / Float(count), gradient: gradient) / Double(count)
    }

    func generator(_ logits: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
        backend.binaryCrossEntropyWithLogits(logits, targets: generatorTargets.baseAddress!, count: count,
                                             scale: 1 / Float(count), gradient: gradient) / Double(count)
    }

    func score(_ logits: UnsafePointer<Float>, count: Int) -> Double {
        backend.sigmoid(logits, scores.baseAddress!, count: count)
        return backend.sum(scores.baseAddress!, count: count) / Double(count)
    }
}
