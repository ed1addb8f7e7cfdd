#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy of `batch` rows of `classes` logits against class indices, the
/// classifier's loss.
///
/// Shapes: logits and gradient are `batch x classes`, labels `batch`. Per row, with the
/// largest logit m subtracted first (so no exp overflows):
///
///     loss = log Σ_c exp(l_c − m) − (l_y − m),   ∂loss/∂l_c = softmax(l)_c − [c = y]
///
/// Returns the **sum** of the rows' losses (in Double) and writes `gradient = scale · ∂/∂l`,
/// so a mean over the batch passes `scale = 1 / batch`. A plain loop: ten logits per example
/// are nothing beside the convolutions around them.
public func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<UInt8>, batch: Int, classes: Int,
                                scale: Float, gradient: UnsafeMutablePointer<Float>) -> Double {
    var total = 0.0
    for b in 0..<batch {
        let row = logits + b * classes, out = gradient + b * classes
        let label = Int(labels[b])
        precondition(label < classes, "label \(label) is not one of \(classes) classes")
        var largest = row[0]
        for c in 1..<classes { largest = max(largest, row[c]) }
        var sum: Float = 0
        for c in 0..<classes {
            out[c] = expf(row[c] - largest)
            sum += out[c]
        }
        total += Double(logf(sum) - (row[label] - largest))
        let normalizer = scale / sum
        for c in 0..<classes { out[c] *= normalizer }
        out[label] -= scale
    }
    return total
}

/// Writes the softmax of each of `batch` rows of `classes` logits into `probabilities`
/// (Double, `batch x classes`): the classifier's p(y | x).
public func softmax(logits: UnsafePointer<Float>, batch: Int, classes: Int,
                    into probabilities: UnsafeMutablePointer<Double>) {
    for b in 0..<batch {
        let row = logits + b * classes, out = probabilities + b * classes
        var largest = row[0]
        for c in 1..<classes { largest = max(largest, row[c]) }
        var sum = 0.0
        for c in 0..<classes {
            out[c] = exp(Double(row[c] - largest))
            sum += out[c]
        }
        for c in 0..<classes { out[c] /= sum }
    }
}
