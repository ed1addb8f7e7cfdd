import Datasets
import Foundation

/// How good a set of generated images is, as the classifier sees it.
public struct EvaluationReport: Sendable, Equatable, Codable {
    /// Images measured.
    public let count: Int
    /// Squared Fréchet distance to the test set in the classifier's penultimate features
    /// ("FID", lower is better; 0 for the test set's own statistics).
    public let frechetDistance: Double
    /// exp(E_x KL(p(y|x) ‖ p(y))), the Inception Score's formula with this classifier: from 1
    /// (every image classified alike, or none confidently) to 10 (confident and balanced).
    public let classifierScore: Double
    /// Entropy of the predicted classes' histogram over ln 10: 0 (one class) to 1 (uniform).
    public let classCoverage: Double
    /// Images predicted as each class, 0-9.
    public let histogram: [Int]

    /// The keys of a metrics.jsonl record.
    enum CodingKeys: String, CodingKey {
        case count = "eval_count", frechetDistance = "fid", classifierScore = "score"
        case classCoverage = "coverage", histogram = "class_histogram"
    }
}

/// Measures sets of images against a data set's test split with its trained classifier: the
/// Fréchet distance, the classifier score and the class coverage (see `EvaluationReport`).
///
/// The test split's feature statistics (and their matrix root) are computed once, in `init`;
/// each `evaluate` then runs its images through the classifier once. For a training run that
/// evaluates every N steps, build one evaluator and keep it.
public final class Evaluator {
    public let classifier: Classifier
    /// The test split's (or the given reference images') feature statistics.
    public let reference: FrechetReference

    /// An evaluator against the images of `testSet` in `examples` (all of them by default).
    public convenience init(classifier: Classifier, testSet: ImageShard, examples: Range<Int>? = nil) throws {
        try classifier.checkImageSize(rows: testSet.rows, columns: testSet.columns, of: testSet.imagesPath)
        let range = examples ?? 0..<testSet.count
        try self.init(classifier: classifier, referenceImages: testSet.withSignedImages(range) { images in
            try Evaluator.statistics(of: images, count: range.count, classifier: classifier)
        })
    }

    /// An evaluator against images given as Floats in [-1, 1] (`count x classifier.pixelCount`).
    public convenience init(classifier: Classifier, referenceImages images: UnsafeBufferPointer<Float>, count: Int) throws {
        try self.init(classifier: classifier,
                      referenceImages: Evaluator.statistics(of: images, count: count, classifier: classifier))
    }

    private init(classifier: Classifier, referenceImages statistics: FeatureStatistics) throws {
        self.classifier = classifier
        reference = try FrechetReference(statistics)
    }

    /// Measures `count` images (`count x classifier.pixelCount` Floats in [-1, 1], as the
    /// generator writes them). Throws `EvaluationError` for fewer than 2 images, a buffer of
    /// another size, or an image holding a NaN or an infinity.
    public func evaluate(images: UnsafeBufferPointer<Float>, count: Int) throws -> EvaluationReport {
        try Evaluator.check(images, count: count, classifier: classifier)
        let classes = Classifier.classCount
        let features = UnsafeMutablePointer<Float>.allocate(capacity: count * Classifier.featureCount)
        let probabilities = UnsafeMutablePointer<Double>.allocate(capacity: count * classes)
        defer { features.deallocate(); probabilities.deallocate() }
        var histogram = [Int](repeating: 0, count: classes)
        classifier.classify(images.baseAddress!, count: count) { first, batch, f, logits in
            (features + first * Classifier.featureCount).update(from: f, count: batch * Classifier.featureCount)
            softmax(logits: logits, batch: batch, classes: classes, into: probabilities + first * classes)
            for b in 0..<batch { histogram[argmax(logits + b * classes, count: classes)] += 1 }
        }
        let statistics = FeatureStatistics(features, count: count, dimension: Classifier.featureCount)
        return EvaluationReport(count: count, frechetDistance: try reference.distance(to: statistics),
                                classifierScore: classifierScore(probabilities, count: count, classes: classes),
                                classCoverage: coverage(histogram), histogram: histogram)
    }

    /// The classifier's feature statistics of `count` images.
    static func statistics(of images: UnsafeBufferPointer<Float>, count: Int, classifier: Classifier) throws -> FeatureStatistics {
        try check(images, count: count, classifier: classifier)
        let features = UnsafeMutablePointer<Float>.allocate(capacity: count * Classifier.featureCount)
        defer { features.deallocate() }
        classifier.classify(images.baseAddress!, count: count) { first, batch, f, _ in
            (features + first * Classifier.featureCount).update(from: f, count: batch * Classifier.featureCount)
        }
        return FeatureStatistics(features, count: count, dimension: Classifier.featureCount)
    }

    private static func check(_ images: UnsafeBufferPointer<Float>, count: Int, classifier: Classifier) throws {
        guard count >= 2 else { throw EvaluationError.tooFewImages(count: count) }
        let pixels = classifier.pixelCount
        guard images.count == count * pixels else {
            throw EvaluationError.imageBufferSize(count: count, pixelsPerImage: pixels, given: images.count)
        }
        if let bad = images.firstIndex(where: { !$0.isFinite }) { throw EvaluationError.nonFiniteImage(index: bad / pixels) }
    }
}

/// exp(mean over images of KL(p(y|x) ‖ p(y))), p(y) the mean of the images' p(y|x)
/// (`probabilities`: `count x classes`). Terms with p(y|x) = 0 add 0 (the limit of p log p).
func classifierScore(_ probabilities: UnsafePointer<Double>, count: Int, classes: Int) -> Double {
    var marginal = [Double](repeating: 0, count: classes)
    for n in 0..<count { for c in 0..<classes { marginal[c] += probabilities[n * classes + c] } }
    for c in 0..<classes { marginal[c] /= Double(count) }
    var divergence = 0.0
    for n in 0..<count {
        for c in 0..<classes {
            let p = probabilities[n * classes + c]
            if p > 0 { divergence += p * (log(p) - log(marginal[c])) }
        }
    }
    return exp(divergence / Double(count))
}

/// The entropy of `histogram`'s distribution over ln(its number of classes), in [0, 1].
func coverage(_ histogram: [Int]) -> Double {
    let total = Double(histogram.reduce(0, +))
    let entropy = histogram.reduce(0.0) { sum, n in n == 0 ? sum : sum - Double(n) / total * log(Double(n) / total) }
    return entropy / log(Double(histogram.count))
}
