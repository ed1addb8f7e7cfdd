import XCTest
@testable import Evaluation

final class SoftmaxCrossEntropyTests: XCTestCase {
    /// The loss of one row in Double: log Σ exp(l) − l_y, the oracle for the Float kernel.
    func referenceLoss(_ logits: [Double], label: Int) -> Double {
        let largest = logits.max()!
        return log(logits.reduce(0) { $0 + exp($1 - largest) }) + largest - logits[label]
    }

    func testGradientMatchesFiniteDifferences() {
        let (batch, classes) = (4, 10)
        // Spread logits, one row with a large common offset (exp would overflow without the shift).
        var logits = (0..<batch * classes).map { Float(sin(Double($0) * 1.7) * 3) }
        for c in 0..<classes { logits[2 * classes + c] += 500 }
        let labels: [UInt8] = [3, 0, 9, 5]
        let scale: Float = 1 / Float(batch)
        var gradient = [Float](repeating: .nan, count: batch * classes)
        let loss = softmaxCrossEntropy(logits: logits, labels: labels, batch: batch, classes: classes,
                                       scale: scale, gradient: &gradient)

        var expected = 0.0
        for b in 0..<batch {
            let row = logits[b * classes ..< (b + 1) * classes].map(Double.init)
            expected += referenceLoss(row, label: Int(labels[b]))
            for c in 0..<classes {
                // Central differences of the Double reference, scaled as the kernel's gradient.
                let h = 1e-4
                var plus = row, minus = row
                plus[c] += h
                minus[c] -= h
                let numeric = (referenceLoss(plus, label: Int(labels[b])) - referenceLoss(minus, label: Int(labels[b]))) / (2 * h)
                XCTAssertEqual(Double(gradient[b * classes + c]), Double(scale) * numeric, accuracy: 1e-6, "row \(b), class \(c)")
            }
        }
        XCTAssertEqual(loss, expected, accuracy: 1e-5 * expected)
        // Each row's gradient sums to zero: softmax sums to one, the one-hot too.
        for b in 0..<batch {
            XCTAssertEqual(gradient[b * classes ..< (b + 1) * classes].reduce(0, +), 0, accuracy: 1e-6)
        }
    }

    func testSoftmaxRowsAreDistributions() {
        let logits: [Float] = [0, 0, 0, 1000, -1000, 3, 2, 1]
        var probabilities = [Double](repeating: .nan, count: 8)
        softmax(logits: logits, batch: 2, classes: 4, into: &probabilities)
        XCTAssertEqual(Array(probabilities[0..<4]), [0, 0, 0, 1])
        XCTAssertEqual(probabilities[4], 0)
        XCTAssertEqual(probabilities[4..<8].reduce(0, +), 1, accuracy: 1e-15)
        XCTAssertEqual(probabilities[5] / probabilities[6], exp(1), accuracy: 1e-12)
    }
}
