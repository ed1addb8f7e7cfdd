import XCTest
import Backends
import Kernels
@testable import NN

/// Dropout's mask (rate, scale, determinism, global indexing) and its backward.
final class DropoutTests: XCTestCase {
    let stream = RandomStream(seed: 42, 7)
    let backend = Backends.automatic()

    /// The vector kernel draws exactly the definition's mask (`unitFloat(at:) < rate`, as the
    /// reference backend computes it) on every instruction set and thread count, at rates whose
    /// threshold is and is not a whole multiple of 2⁻²⁴, on lengths that are not multiples of 8.
    func testMaskKernelIsTheDefinition() throws {
        let reference = ReferenceBackend()
        for isa in Backends.supported {
            for threads in [1, 2, 3] {
                let vector = try Backends.make(isa, threads: threads, thresholds: .always)
                for (rate, count, first) in [(Float(0.3), 1001, UInt64(0)), (0.5, 7, 13), (0.25, 20_000, 999), (1e-7, 64, 5)] {
                    var a = [Float](repeating: -1, count: count), b = a
                    reference.dropoutMask(&a, count: count, stream: stream, first: first, rate: rate, keep: 1 / (1 - rate))
                    vector.dropoutMask(&b, count: count, stream: stream, first: first, rate: rate, keep: 1 / (1 - rate))
                    XCTAssertEqual(a, b, "\(isa), \(threads) threads, rate \(rate), \(count) values")
                }
            }
        }
    }

    func testGradientsWithAFixedMask() {
        // The harness runs every forward with the same context, hence the same mask.
        let context = ForwardContext(training: true, random: stream, firstExample: 3)
        checkGradients(Sequential([Dropout(37, rate: 0.3, backend: backend)], maxBatch: 4), batch: 4, context: context)
    }

    func testRateZeroAndInferenceAreIdentity() {
        let x = values(5 * 33, seed: 1), dy = values(5 * 33, seed: 2)
        for (rate, training) in [(Float(0), true), (0, false), (0.3, false), (0.9, false)] {
            let layer = Dropout(33, rate: rate, backend: backend)
            layer.allocate(maxBatch: 5, memory: NetworkMemory())
            let y = forward(layer, x, batch: 5, context: .init(training: training, random: stream))
            XCTAssertEqual(y, x, "rate \(rate), training \(training)")
            XCTAssertEqual(backward(layer, dy, batch: 5), dy)
        }
    }

    func testMaskRateScaleAndBackward() {
        let (batch, count) = (100, 1000) // 100,000 values
        let layer = Dropout(count, rate: 0.3, backend: backend)
        layer.allocate(maxBatch: batch, memory: NetworkMemory())
        let x = values(batch * count, seed: 3).map { $0 + 10 } // never zero
        let y = forward(layer, x, batch: batch, context: .init(training: true, random: stream))
        let kept = zip(x, y).filter { $0.1 != 0 }
        let dropped = Double(x.count - kept.count) / Double(x.count)
        // Binomial: standard deviation sqrt(0.3 · 0.7 / 100,000) ≈ 0.0014; allow 5 of them.
        XCTAssertEqual(dropped, 0.3, accuracy: 0.0073)
        for (xi, yi) in kept { XCTAssertEqual(yi, xi * (1 / 0.7), accuracy: 1e-6 * abs(yi)) }
        // Backward applies the same mask and scale.
        let dy = [Float](repeating: 1, count: x.count)
        let dx = backward(layer, dy, batch: batch)
        for i in 0..<x.count { XCTAssertEqual(dx[i], y[i] == 0 ? 0 : 1 / 0.7, "value \(i)") }
        // The same context draws the same mask; another stream another one.
        XCTAssertEqual(forward(layer, x, batch: batch, context: .init(training: true, random: stream)), y)
        let other = forward(layer, x, batch: batch, context: .init(training: true, random: RandomStream(seed: 43, 7)))
        XCTAssertNotEqual(other, y)
    }

    func testMaskFollowsTheGlobalExampleIndex() {
        // One rank with 4 examples draws what two ranks with 2 each (examples 0-1 and 2-3) draw.
        let count = 29
        let whole = Dropout(count, rate: 0.3, backend: backend), half = Dropout(count, rate: 0.3, backend: backend)
        whole.allocate(maxBatch: 4, memory: NetworkMemory())
        half.allocate(maxBatch: 2, memory: NetworkMemory())
        let x = values(4 * count, seed: 4)
        let y = forward(whole, x, batch: 4, context: .init(training: true, random: stream, firstExample: 0))
        let first = forward(half, Array(x[..<(2 * count)]), batch: 2,
                            context: .init(training: true, random: stream, firstExample: 0))
        let second = forward(half, Array(x[(2 * count)...]), batch: 2,
                             context: .init(training: true, random: stream, firstExample: 2))
        XCTAssertEqual(first + second, y)
        XCTAssertNotEqual(first.map { $0 == 0 }, second.map { $0 == 0 }, "the halves draw different masks")
        // And the mask is a function of the position: element f of global example e.
        for e in 0..<4 {
            for f in 0..<count {
                let dropped = stream.unitFloat(at: UInt64(e * count + f)) < 0.3
                XCTAssertEqual(y[e * count + f], dropped ? 0 : x[e * count + f] * (1 / 0.7))
            }
        }
    }

    // MARK: Helpers

    func values(_ count: Int, seed: UInt64) -> [Float] {
        var v = [Float](repeating: 0, count: count)
        RandomStream(seed: seed, 200).fillNormal(&v, count: count)
        return v
    }

    func forward(_ layer: Layer, _ x: [Float], batch: Int, context: ForwardContext) -> [Float] {
        x.withUnsafeBufferPointer { x in
            Array(UnsafeBufferPointer(start: layer.forward(x.baseAddress!, batch: batch, context: context),
                                      count: batch * layer.outputCount))
        }
    }

    func backward(_ layer: Layer, _ dy: [Float], batch: Int) -> [Float] {
        dy.withUnsafeBufferPointer { dy in
            let dx = layer.backward(dy.baseAddress!, batch: batch, parameterGradients: true, needInputGradient: true)!
            return Array(UnsafeBufferPointer(start: dx, count: batch * layer.inputCount))
        }
    }
}
