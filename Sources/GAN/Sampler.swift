import Backends
import FileFormats
import Kernels
import NN

/// A checkpoint's generator alone, drawing images: what `gantry sample` and `gantry eval` need,
/// without the discriminator, optimizers and communicator a trainer holds. A run that kept a
/// moving average of its generator draws from the average, as it did while training.
public final class Sampler {
    public let configuration: GANConfiguration
    public let generator: Sequential
    /// The step the checkpoint was written at.
    public let step: Int
    private let backend: Backend
    private let noise: UnsafeMutableBufferPointer<Float>

    /// Loads the generator of the checkpoint at `path` (every tensor's checksum checked).
    public init(checkpoint path: String, maxBatch: Int = 100, backend: Backend = Backends.automatic()) throws {
        let file = try SafetensorsFile(path: path)
        configuration = try Checkpoint.configuration(of: file)
        guard let step = file.metadata[Checkpoint.stepKey].flatMap(Int.init) else {
            throw CheckpointError.notAGantryCheckpoint(path: path, missing: Checkpoint.stepKey)
        }
        self.step = step
        self.backend = backend
        generator = GANModels.generator(configuration, maxBatch: maxBatch, backend: backend)
        _ = try Checkpoint.load(generator, named: Checkpoint.sampledGeneratorName(configuration), from: file)
        noise = .allocate(capacity: maxBatch * configuration.latentDimension)
        noise.initialize(repeating: 0)
    }

    deinit { noise.deallocate() }

    /// Generates `count` images (inference mode, values in [-1, 1]) from the noise of examples
    /// `firstExample ..< firstExample + count` of `stream` into `output` (`count x pixels`).
    public func generate(count: Int, stream: RandomStream, firstExample: Int = 0, into output: UnsafeMutablePointer<Float>) {
        generateImages(generator, noise: noise, configuration: configuration, count: count, stream: stream,
                       firstExample: firstExample, into: output, backend: backend)
    }
}

/// Runs `generator` in inference mode over `count` latent vectors of `stream` (examples
/// `firstExample...`), in chunks of its largest batch, using `noise` as scratch.
func generateImages(_ generator: Sequential, noise: UnsafeMutableBufferPointer<Float>, configuration: GANConfiguration,
                    count: Int, stream: RandomStream, firstExample: Int, into output: UnsafeMutablePointer<Float>,
                    backend: Backend) {
    let pixels = configuration.pixelCount
    var done = 0
    while done < count {
        let n = min(generator.maxBatch, count - done)
        fillLatent(noise.baseAddress!, count: n, firstExample: firstExample + done, stream: stream,
                   configuration: configuration, backend: backend)
        let images = generator.forward(noise.baseAddress!, batch: n, context: ForwardContext(training: false))
        (output + done * pixels).update(from: images, count: n * pixels)
        done += n
    }
}
