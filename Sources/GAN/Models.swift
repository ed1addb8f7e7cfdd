import Kernels
import NN

/// The generator and discriminator of each `ModelKind`, built on one backend.
///
/// Generator: `batch x latentDimension` noise in, `batch x pixels` images in [-1, 1] out.
/// Discriminator: `batch x pixels` images in, `batch x 1` logits out.
public struct GANModels {
    public let generator: Sequential
    public let discriminator: Sequential

    public init(configuration c: GANConfiguration, maxBatch: Int, backend: Backend) {
        switch c.model {
        case .mlp:
            let hidden = 128, slope: Float = 0.01
            generator = Sequential([
                Dense(c.latentDimension, hidden, backend: backend),
                LeakyReLU(hidden, slope: slope, backend: backend),
                Dense(hidden, c.pixelCount, backend: backend),
                Tanh(c.pixelCount, backend: backend),
            ], maxBatch: maxBatch)
            discriminator = Sequential([
                Dense(c.pixelCount, hidden, backend: backend),
                LeakyReLU(hidden, slope: slope, backend: backend),
                Dense(hidden, 1, backend: backend),
            ], maxBatch: maxBatch)
        }
    }

    /// Fresh parameters from `seed` (the same on every rank; rank 0's are broadcast anyway).
    public func initialize(seed: UInt64) {
        generator.initializeParameters(seed: RandomStream(seed: seed, RandomPurpose.parameterInitialization.rawValue, 0).key)
        discriminator.initializeParameters(seed: RandomStream(seed: seed, RandomPurpose.parameterInitialization.rawValue, 1).key)
    }
}
