import Kernels

/// The original GAN loss on D's logits (the seeds 000-002): D minimizes
/// BCE(D(x), 1 − smoothing) + BCE(D(G(z)), 0); G minimizes BCE(D(G(z)), 1), the
/// non-saturating −log D(G(z)) of Goodfellow et al., section 3.
///
/// Public so that a GAN written on Gantry's layers outside this module (Examples/TinyGAN) can
/// use the trainer's loss: D's outputs are logits, one per example.
public final class BinaryCrossEntropyLoss: AdversarialLoss {
    private let backend: Backend
    /// Targets, one per example of the largest batch: real (1 − smoothing), fake (0), G's (1).
    private let real, fake, generatorTargets, scores: UnsafeMutableBufferPointer<Float>

    /// A loss for batches of up to `maxBatch` examples; real images' targets are
    /// `1 − labelSmoothing` (0: none; Salimans et al.'s one-sided smoothing uses 0.1).
    public init(maxBatch: Int, labelSmoothing: Float = 0, backend: Backend) {
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

    public func discriminator(_ logits: UnsafePointer<Float>, on input: DiscriminatorInput, count: Int,
                              gradient: UnsafeMutablePointer<Float>) -> Double {
        let targets = input == .real ? real : fake
        return backend.binaryCrossEntropyWithLogits(logits, targets: targets.baseAddress!, count: count,
                                                    scale: 1 / Float(count), gradient: gradient) / Double(count)
    }

    public func generator(_ logits: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
        backend.binaryCrossEntropyWithLogits(logits, targets: generatorTargets.baseAddress!, count: count,
                                             scale: 1 / Float(count), gradient: gradient) / Double(count)
    }

    public func score(_ logits: UnsafePointer<Float>, count: Int) -> Double {
        backend.sigmoid(logits, scores.baseAddress!, count: count)
        return backend.sum(scores.baseAddress!, count: count) / Double(count)
    }
}
