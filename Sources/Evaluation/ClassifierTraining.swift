import Datasets
import Kernels
import NN
import Optim

/// How the classifier is trained: Adam on the softmax cross-entropy, shuffled batches.
public struct ClassifierTrainingSettings: Sendable, Equatable {
    public var epochs: Int
    public var batchSize: Int
    public var learningRate: Float
    /// Decides the initial parameters, the data order and the dropout masks: training is a
    /// pure function of the seed and the data (and the same on any number of threads).
    public var seed: UInt64
    /// The last `decayEpochs` epochs run at a tenth of `learningRate` (Adam's moments carried over).
    public var decayEpochs: Int
    /// Stop after this many steps (nil: after `epochs`), for tests that need a classifier fast.
    public var maxSteps: Int?

    public init(epochs: Int = 10, batchSize: Int = 64, learningRate: Float = 1e-3, decayEpochs: Int = 3, seed: UInt64 = 1,
                maxSteps: Int? = nil) {
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.decayEpochs = decayEpochs
        self.seed = seed
        self.maxSteps = maxSteps
    }
}

/// Where training stands, handed to the caller's progress closure every few steps.
public struct ClassifierTrainingProgress: Sendable {
    /// Steps done, and the steps the run will take.
    public let step: Int
    public let steps: Int
    /// The epoch of the last step (from 0).
    public let epoch: Int
    /// Mean loss and accuracy over the training batches since the previous report.
    public let loss: Double
    public let accuracy: Double
}

/// Purposes of the random streams, so that a seed's uses are independent (ASCII tags).
enum ClassifierRandom: UInt64 {
    case initialization = 0x636C_696E_6974  // "clinit"
    case dropout = 0x636C_6472_6F70          // "cldrop"
}

extension Classifier {
    /// Initializes the parameters from `settings.seed` and trains on every example of `shard`
    /// (labels 0-9, images of this classifier's size). Calls `progress` every `reportEvery`
    /// steps and after the last. Throws `EvaluationError` for data it cannot learn from.
    public func train(on shard: ImageShard, settings: ClassifierTrainingSettings, reportEvery: Int = 100,
                      progress: (ClassifierTrainingProgress) -> Void = { _ in }) throws {
        try checkImageSize(rows: shard.rows, columns: shard.columns, of: shard.imagesPath)
        if let bad = shard.labels.firstIndex(where: { Int($0) >= Classifier.classCount }) {
            throw EvaluationError.labelOutOfRange(path: shard.labelsPath, index: bad, label: Int(shard.labels[bad]))
        }
        precondition(settings.batchSize <= maxBatch, "batch \(settings.batchSize) exceeds the classifier's \(maxBatch)")
        var batcher = try EpochBatcher(shard: shard, batchSize: settings.batchSize, seed: settings.seed)
        let steps = min(settings.maxSteps ?? Int.max, settings.epochs * batcher.stepsPerEpoch)

        for (index, network) in [features, head].enumerated() {
            network.initializeParameters(seed: RandomStream(seed: settings.seed, ClassifierRandom.initialization.rawValue,
                                                            UInt64(index)).key)
        }
        var optimizers = [features, head].map {
            Adam(count: $0.parameters.count, config: .init(learningRate: settings.learningRate), backend: backend)
        }
        let decayStep = max(0, settings.epochs - settings.decayEpochs) * batcher.stepsPerEpoch

        let batch = settings.batchSize, classes = Classifier.classCount
        let images = UnsafeMutablePointer<Float>.allocate(capacity: batch * pixelCount)
        let labels = UnsafeMutablePointer<UInt8>.allocate(capacity: batch)
        let logitGradient = UnsafeMutablePointer<Float>.allocate(capacity: batch * classes)
        defer { images.deallocate(); labels.deallocate(); logitGradient.deallocate() }

        var lossSum = 0.0, correct = 0, seen = 0
        for step in 0..<steps {
            let epoch = step / batcher.stepsPerEpoch
            if epoch != batcher.epoch { batcher.beginEpoch(epoch) }
            if step == decayStep, settings.decayEpochs > 0 {
                optimizers = optimizers.map { $0.continuing(learningRate: settings.learningRate / 10, backend: backend) }
            }
            try batcher.copyBatch(step % batcher.stepsPerEpoch, into: images, labels: labels)

            // The whole step: forward through both networks, the loss, backward, Adam on each.
            let context = ForwardContext(training: true, random: RandomStream(seed: settings.seed,
                                                                              ClassifierRandom.dropout.rawValue, UInt64(step)),
                                         firstExample: 0)
            let f = features.forward(images, batch: batch, context: context)
            let logits = head.forward(f, batch: batch, context: context)
            lossSum += softmaxCrossEntropy(logits: logits, labels: labels, batch: batch, classes: classes,
                                           scale: 1 / Float(batch), gradient: logitGradient)
            for b in 0..<batch where argmax(logits + b * classes, count: classes) == Int(labels[b]) { correct += 1 }
            seen += batch
            features.parameters.zeroGradients()
            head.parameters.zeroGradients()
            let featureGradient = head.backward(logitGradient, batch: batch, options: BackwardOptions(inputGradient: true))!
            features.backward(featureGradient, batch: batch)
            for (network, optimizer) in zip([features, head], optimizers) {
                optimizer.step(parameters: network.parameters.values.baseAddress!,
                               gradients: network.parameters.gradients.baseAddress!)
            }

            if (step + 1) % reportEvery == 0 || step + 1 == steps {
                progress(ClassifierTrainingProgress(step: step + 1, steps: steps, epoch: epoch, loss: lossSum / Double(seen),
                                                    accuracy: Double(correct) / Double(seen)))
                lossSum = 0
                correct = 0
                seen = 0
            }
        }
    }

    /// The share of `shard`'s images whose predicted class is their label.
    public func accuracy(on shard: ImageShard) throws -> Double {
        try checkImageSize(rows: shard.rows, columns: shard.columns, of: shard.imagesPath)
        var correct = 0
        shard.withSignedImages(0..<shard.count) { images in
            for (index, predicted) in predictions(images.baseAddress!, count: shard.count).enumerated()
            where predicted == Int(shard.labels[index]) {
                correct += 1
            }
        }
        return Double(correct) / Double(shard.count)
    }

    /// Throws `EvaluationError.imageSize` unless images of `rows x columns` are this classifier's.
    func checkImageSize(rows: Int, columns: Int, of path: String) throws {
        guard rows == imageHeight, columns == imageWidth else {
            throw EvaluationError.imageSize(path: path, rows: rows, columns: columns,
                                            expectedRows: imageHeight, expectedColumns: imageWidth)
        }
    }
}

extension ImageShard {
    /// Calls `body` with local images `range` as Floats in [-1, 1] (`range.count x pixelsPerImage`),
    /// in a buffer valid during the call.
    public func withSignedImages<T>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<Float>) throws -> T) rethrows -> T {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: range.count * pixelsPerImage)
        defer { buffer.deallocate() }
        for (slot, index) in range.enumerated() { copyImage(index, into: buffer.baseAddress! + slot * pixelsPerImage) }
        return try body(UnsafeBufferPointer(buffer))
    }
}

extension Adam {
    /// A new Adam at another learning rate that goes on from this one's moments and step count
    /// (a step schedule; Adam's configuration is fixed for its life).
    func continuing(learningRate: Float, backend: Backend) -> Adam {
        let next = Adam(count: count, config: .init(learningRate: learningRate), backend: backend)
        next.m.update(fromContentsOf: m)
        next.v.update(fromContentsOf: v)
        next.stepCount = stepCount
        return next
    }
}
