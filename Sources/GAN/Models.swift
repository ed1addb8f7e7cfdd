import Kernels
import NN

/// One of the two networks of a GAN.
public enum NetworkRole: String, CaseIterable, Sendable, Codable {
    case generator, discriminator

    /// "G" or "D".
    public var letter: String { self == .generator ? "G" : "D" }
}

/// The generator and discriminator of each `ModelKind`, built on one backend.
///
/// Generator: `batch x latentDimension` noise in, `batch x pixels` images in [-1, 1] out.
/// Discriminator: `batch x pixels` images in, `batch x 1` logits out.
///
/// The two networks share one `Workspace` (the convolutions' per-call im2col columns): the
/// trainer runs one layer call at a time, so the DCGAN needs 40 MB of it at batch 64 (the
/// generator's 7x7 256 -> 128 layer), not that plus the discriminator's 21 MB.
public struct GANModels {
    public let generator: Sequential
    public let discriminator: Sequential

    public init(configuration c: GANConfiguration, maxBatch: Int, backend: Backend) {
        let workspace = Workspace()
        generator = GANModels.generator(c, maxBatch: maxBatch, workspace: workspace, backend: backend)
        discriminator = GANModels.discriminator(c, maxBatch: maxBatch, workspace: workspace, backend: backend)
    }

    /// The generator of `c.model` alone (for sampling a checkpoint).
    public static func generator(_ c: GANConfiguration, maxBatch: Int, workspace: Workspace = Workspace(),
                                 backend: Backend) -> Sequential {
        switch c.model {
        case .mlp:
            let hidden = 128, slope: Float = 0.01
            return Sequential([
                Dense(c.latentDimension, hidden, backend: backend),
                LeakyReLU(hidden, slope: slope, backend: backend),
                Dense(hidden, c.pixelCount, backend: backend),
                Tanh(c.pixelCount, backend: backend),
            ], maxBatch: maxBatch, workspace: workspace)
        case .dcganWGAN:
            // Seed 003: ReLU before batch norm, as its code has it.
            func relu(_ count: Int) -> Layer { LeakyReLU(count, slope: 0, backend: backend) }
            return Sequential([
                Dense(c.latentDimension, 7 * 7 * 256, backend: backend), relu(7 * 7 * 256),
                Reshape([7, 7, 256]),
                ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 256, filters: 128, kernelSize: 5,
                                stride: 1, backend: backend), relu(7 * 7 * 128),
                BatchNormalization(128, height: 7, width: 7),
                ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 128, filters: 64, kernelSize: 5,
                                stride: 2, backend: backend), relu(14 * 14 * 64),
                BatchNormalization(64, height: 14, width: 14),
                ConvTranspose2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 1, kernelSize: 5,
                                stride: 2, backend: backend),
                Tanh(28 * 28, backend: backend),
            ], maxBatch: maxBatch, workspace: workspace)
        case .dcganGP:
            let slope: Float = 0.2
            return Sequential([
                Dense(c.latentDimension, 7 * 7 * 256, bias: false, backend: backend),
                BatchNormalization(7 * 7 * 256, momentum: 0.8),
                LeakyReLU(7 * 7 * 256, slope: slope, backend: backend),
                Reshape([7, 7, 256]),
                ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 256, filters: 128, kernelSize: 4,
                                stride: 2, bias: false, backend: backend),
                BatchNormalization(128, height: 14, width: 14, momentum: 0.8),
                LeakyReLU(14 * 14 * 128, slope: slope, backend: backend),
                ConvTranspose2D(inputHeight: 14, inputWidth: 14, inputChannels: 128, filters: 64, kernelSize: 4,
                                stride: 2, bias: false, backend: backend),
                BatchNormalization(64, height: 28, width: 28, momentum: 0.8),
                LeakyReLU(28 * 28 * 64, slope: slope, backend: backend),
                ConvTranspose2D(inputHeight: 28, inputWidth: 28, inputChannels: 64, filters: 1, kernelSize: 7,
                                stride: 1, backend: backend),
                Tanh(28 * 28, backend: backend),
            ], maxBatch: maxBatch, workspace: workspace)
        case .dcgan:
            // NHWC throughout: Dense(7*7*256) reshaped to 7x7x256 is the same memory.
            let slope: Float = 0.3
            return Sequential([
                Dense(c.latentDimension, 7 * 7 * 256, bias: false, backend: backend),
                BatchNormalization(7 * 7 * 256),
                LeakyReLU(7 * 7 * 256, slope: slope, backend: backend),
                Reshape([7, 7, 256]),
                ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 256, filters: 128, kernelSize: 5,
                                stride: 1, bias: false, backend: backend),
                BatchNormalization(128, height: 7, width: 7),
                LeakyReLU(7 * 7 * 128, slope: slope, backend: backend),
                ConvTranspose2D(inputHeight: 7, inputWidth: 7, inputChannels: 128, filters: 64, kernelSize: 5,
                                stride: 2, bias: false, backend: backend),
                BatchNormalization(64, height: 14, width: 14),
                LeakyReLU(14 * 14 * 64, slope: slope, backend: backend),
                ConvTranspose2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 1, kernelSize: 5,
                                stride: 2, bias: true, backend: backend),
                Tanh(28 * 28, backend: backend),
            ], maxBatch: maxBatch, workspace: workspace)
        }
    }

    static func discriminator(_ c: GANConfiguration, maxBatch: Int, workspace: Workspace, backend: Backend) -> Sequential {
        switch c.model {
        case .mlp:
            let hidden = 128, slope: Float = 0.01
            return Sequential([
                Dense(c.pixelCount, hidden, backend: backend),
                LeakyReLU(hidden, slope: slope, backend: backend),
                Dense(hidden, 1, backend: backend),
            ], maxBatch: maxBatch, workspace: workspace)
        case .dcgan, .dcganWGAN:
            return GANModels.convolutionalDiscriminator(c, kernelSize: 5, slope: 0.3, maxBatch: maxBatch,
                                                        workspace: workspace, backend: backend)
        case .dcganGP:
            return GANModels.convolutionalDiscriminator(c, kernelSize: 4, slope: 0.2, maxBatch: maxBatch,
                                                        workspace: workspace, backend: backend)
        }
    }

    /// The DCGANs' discriminators: Conv 64 and 128 k x k stride 2, each with LeakyReLU and
    /// dropout, Flatten, Dense 1. The tutorial's (seeds 000 and 003) has 5x5 kernels and slope
    /// 0.3; seed 004's critic 4x4 and 0.2.
    static func convolutionalDiscriminator(_ c: GANConfiguration, kernelSize: Int, slope: Float, maxBatch: Int,
                                           workspace: Workspace, backend: Backend) -> Sequential {
        Sequential([
            Conv2D(inputHeight: 28, inputWidth: 28, inputChannels: 1, filters: 64, kernelSize: kernelSize, stride: 2,
                   backend: backend),
            LeakyReLU(14 * 14 * 64, slope: slope, backend: backend),
            Dropout(14 * 14 * 64, rate: c.dropoutRate, backend: backend),
            Conv2D(inputHeight: 14, inputWidth: 14, inputChannels: 64, filters: 128, kernelSize: kernelSize, stride: 2,
                   backend: backend),
            LeakyReLU(7 * 7 * 128, slope: slope, backend: backend),
            Dropout(7 * 7 * 128, rate: c.dropoutRate, backend: backend),
            Reshape(flattening: [7, 7, 128]),
            Dense(7 * 7 * 128, 1, backend: backend),
        ], maxBatch: maxBatch, workspace: workspace)
    }

    public subscript(_ role: NetworkRole) -> Sequential {
        switch role {
        case .generator: return generator
        case .discriminator: return discriminator
        }
    }

    /// The batch normalization layers of both networks (for synchronized batch norm).
    public var batchNormalizations: [BatchNormalization] {
        (generator.layers + discriminator.layers).compactMap { $0 as? BatchNormalization }
    }

    /// Fresh parameters from `seed` (the same on every rank; rank 0's are broadcast anyway).
    public func initialize(seed: UInt64) {
        generator.initializeParameters(seed: RandomStream(seed: seed, RandomPurpose.parameterInitialization.rawValue, 0).key)
        discriminator.initializeParameters(seed: RandomStream(seed: seed, RandomPurpose.parameterInitialization.rawValue, 1).key)
    }
}
