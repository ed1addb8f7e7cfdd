import FileFormats
import Kernels
import NN

/// The digit classifier the evaluation measures in: a small CNN of Gantry's own layers, in two
/// networks so that its penultimate features (where the Fréchet distance is taken) are one
/// network's output.
///
///     features: x (batch x H x W x 1, pixels in [-1, 1])
///               → Conv 32 5x5 s2 → LeakyReLU(0.2) → Conv 64 5x5 s2 → LeakyReLU(0.2)
///               → Flatten (ceil(H/4)·ceil(W/4)·64) → Dense 128 → LeakyReLU(0.2)    batch x 128
///     head:     → Dropout(0.3) → Dense 10                                           batch x 10 logits
///
/// The dropout sits in the head, after the features, so that it regularizes the last layer
/// without changing what the features are at inference. One classifier per data set (MNIST's
/// digits, Fashion-MNIST's garments), trained on its training split (`train`), saved once.
public final class Classifier {
    /// The architecture's version: a saved classifier of another version is refused on load,
    /// so a change to the layers above must bump it (and the caches are rebuilt).
    public static let version = "1"
    public static let classCount = 10
    public static let featureCount = 128
    static let slope: Float = 0.2, dropoutRate: Float = 0.3

    public let imageHeight: Int
    public let imageWidth: Int
    public var pixelCount: Int { imageHeight * imageWidth }
    /// Images → penultimate features (`batch x featureCount`).
    public let features: Sequential
    /// Features → logits (`batch x classCount`).
    public let head: Sequential
    /// The largest batch one forward pass takes; `classify` cuts larger sets into such batches.
    public let maxBatch: Int
    public let backend: Backend

    /// A classifier with zero parameters (call `features.initializeParameters` and
    /// `head.initializeParameters`, `train`, or load a saved one into it).
    public init(imageHeight: Int = 28, imageWidth: Int = 28, maxBatch: Int = 256, backend: Backend) {
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.maxBatch = maxBatch
        self.backend = backend
        let workspace = Workspace()
        let first = Conv2D(inputHeight: imageHeight, inputWidth: imageWidth, inputChannels: 1, filters: 32,
                           kernelSize: 5, stride: 2, backend: backend)
        let second = Conv2D(inputHeight: first.outputHeight, inputWidth: first.outputWidth, inputChannels: 32,
                            filters: 64, kernelSize: 5, stride: 2, backend: backend)
        let s = Classifier.slope, n = Classifier.featureCount
        features = Sequential([
            first, LeakyReLU(first.outputCount, slope: s, backend: backend),
            second, LeakyReLU(second.outputCount, slope: s, backend: backend),
            Reshape(flattening: [second.outputHeight, second.outputWidth, 64]),
            Dense(second.outputCount, n, backend: backend), LeakyReLU(n, slope: s, backend: backend),
        ], maxBatch: maxBatch, workspace: workspace)
        head = Sequential([
            Dropout(n, rate: Classifier.dropoutRate, backend: backend),
            Dense(n, Classifier.classCount, backend: backend),
        ], maxBatch: maxBatch, workspace: workspace)
    }

    /// Both networks: their tensors are saved as "features.NAME" and "head.NAME".
    var namedNetworks: [(name: String, network: Sequential)] { [("features", features), ("head", head)] }

    /// Runs `count` images (`count x pixelCount`, values in [-1, 1]) through the classifier in
    /// batches of up to `maxBatch`, handing each batch's features (`batch x featureCount`) and
    /// logits (`batch x classCount`) to `body` with the index of the batch's first image. The
    /// pointers are valid during the call only.
    public func classify(_ images: UnsafePointer<Float>, count: Int,
                         _ body: (_ first: Int, _ batch: Int, _ features: UnsafePointer<Float>,
                                  _ logits: UnsafePointer<Float>) throws -> Void) rethrows {
        let inference = ForwardContext(training: false)
        var first = 0
        while first < count {
            let batch = min(maxBatch, count - first)
            let f = features.forward(images + first * pixelCount, batch: batch, context: inference)
            let logits = head.forward(f, batch: batch, context: inference)
            try body(first, batch, f, logits)
            first += batch
        }
    }

    /// The predicted class (the largest logit) of each of `count` images.
    public func predictions(_ images: UnsafePointer<Float>, count: Int) -> [Int] {
        var result = [Int](repeating: 0, count: count)
        classify(images, count: count) { first, batch, _, logits in
            for b in 0..<batch { result[first + b] = argmax(logits + b * Classifier.classCount, count: Classifier.classCount) }
        }
        return result
    }
}

/// The index of the largest of `count` values (the first, on ties).
func argmax(_ values: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for i in 1..<count where values[i] > values[best] { best = i }
    return best
}
