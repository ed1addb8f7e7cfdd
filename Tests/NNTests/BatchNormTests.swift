import XCTest
import Kernels
import Backends
@testable import NN

/// Batch normalization: backward against finite differences, forward and the moving statistics
/// against plain Double loops, and the synchronized (cross-replica) statistics against one
/// replica with the whole batch.
final class BatchNormTests: XCTestCase {
    let backend = Backends.automatic()

    // MARK: Finite differences

    func testGradientsDenseTraining() {
        // 13 and 19 channels: one or two 8-lane blocks and a scalar tail; 1 channel: tail only.
        for (channels, batch) in [(13, 6), (16, 4), (19, 9), (1, 5)] {
            checkGradients(Sequential([BatchNormalization(channels)], maxBatch: batch), batch: batch)
        }
        // A wide spread and a large offset: the statistics and their gradients scale with them.
        checkGradients(Sequential([BatchNormalization(11)], maxBatch: 7), batch: 7, inputScale: 4)
    }

    func testGradientsConvTraining() {
        for (channels, height, width, batch) in [(19, 3, 2, 3), (8, 2, 2, 2), (5, 4, 3, 1)] {
            let layer = BatchNormalization(channels, height: height, width: width)
            checkGradients(Sequential([layer], maxBatch: batch), batch: batch)
        }
    }

    func testGradientsInference() {
        checkGradients(Sequential([BatchNormalization(13)], maxBatch: 4), batch: 4, context: .init(training: false))
        checkGradients(Sequential([BatchNormalization(9, height: 2, width: 3)], maxBatch: 3), batch: 3,
                       context: .init(training: false))
    }

    func testGradientsThroughAStack() {
        let network = Sequential([
            Dense(7, 24, bias: false, backend: backend),
            BatchNormalization(6, height: 2, width: 2),
            Tanh(24, backend: backend),
            Dropout(24, rate: 0.3, backend: backend),
            Reshape(flattening: [2, 2, 6]),
            Dense(24, 5, backend: backend),
        ], maxBatch: 6)
        checkGradients(network, batch: 6, context: .init(training: true, random: RandomStream(seed: 4)), seed: 3)
    }

    func testParameterGradientsAloneMatchAndAccumulate() {
        let network = Sequential([BatchNormalization(10, height: 2, width: 1)], maxBatch: 3)
        network.initializeParameters(seed: 1)
        let x = random(3 * 20, seed: 1), dy = random(3 * 20, seed: 2)
        x.withUnsafeBufferPointer { x in
            _ = network.forward(x.baseAddress!, batch: 3, context: .init(training: true))
            network.parameters.zeroGradients()
            network.backward(dy, batch: 3, options: .init(parameterGradients: true, inputGradient: true))
            let withInput = Array(network.parameters.gradients)
            network.backward(dy, batch: 3, options: .init(parameterGradients: true, inputGradient: false))
            XCTAssertEqual(Array(network.parameters.gradients), withInput.map { $0 * 2 })
            network.backward(dy, batch: 3, options: .init(parameterGradients: false, inputGradient: true))
            XCTAssertEqual(Array(network.parameters.gradients), withInput.map { $0 * 2 })
        }
    }

    // MARK: Forward and moving statistics against plain loops

    func testLayoutAndInitialValues() {
        let network = Sequential([Dense(3, 4, backend: backend), BatchNormalization(4)], maxBatch: 1)
        network.initializeParameters(seed: 1)
        XCTAssertEqual(network.parameters.entries.map(\.name), ["0.kernel", "0.bias", "1.gamma", "1.beta"])
        XCTAssertEqual(network.state.entries.map(\.name), ["1.moving_mean", "1.moving_variance"])
        XCTAssertEqual(Array(network.parameters.values[16..<24]), [1, 1, 1, 1, 0, 0, 0, 0])
        XCTAssertEqual(Array(network.state.values), [0, 0, 0, 0, 1, 1, 1, 1])
    }

    func testTrainingForwardAndMovingStatisticsMatchPlainLoops() {
        let (batch, height, width, channels) = (4, 3, 3, 19)
        let rows = batch * height * width
        let layer = BatchNormalization(channels, height: height, width: width)
        let network = Sequential([layer], maxBatch: batch)
        network.initializeParameters(seed: 1)
        // Per-channel offsets and spreads far from (0, 1).
        var x = random(rows * channels, seed: 3)
        for r in 0..<rows { for c in 0..<channels { x[r * channels + c] = x[r * channels + c] * Float(c + 1) + Float(c) - 5 } }
        let stats = statistics(x, rows: rows, channels: channels)

        // gamma 1, beta 0: every channel comes out with mean 0 and variance var / (var + eps).
        var y = forward(network, x, batch: batch, training: true)
        let out = statistics(y, rows: rows, channels: channels)
        for c in 0..<channels {
            XCTAssertEqual(out.mean[c], 0, accuracy: 1e-6, "channel \(c) mean")
            XCTAssertEqual(out.variance[c], stats.variance[c] / (stats.variance[c] + 1e-3), accuracy: 2e-6,
                           "channel \(c) variance")
            XCTAssertEqual(out.variance[c], 1, accuracy: 5e-3, "channel \(c): 1 less epsilon's share")
        }
        var expectedMean = stats.mean.map { 0.99 * 0 + 0.01 * $0 }
        var expectedVariance = stats.variance.map { 0.99 * 1 + 0.01 * $0 } // biased, as Keras 3
        assertClose(network.state.values[0..<channels], expectedMean, 1e-6, "moving mean after one step")
        assertClose(network.state.values[channels...], expectedVariance, 1e-6, "moving variance after one step")

        // Generic gamma and beta: y = gamma (x - mean) / sqrt(var + eps) + beta, in Double.
        let p = network.parameters.values.baseAddress!
        RandomStream(seed: 9).fillUniform(p, count: 2 * channels, low: -2, high: 2)
        let x2 = x.map { $0 * 0.5 + 1 }
        let stats2 = statistics(x2, rows: rows, channels: channels)
        y = forward(network, x2, batch: batch, training: true)
        var reference = [Double](repeating: 0, count: x2.count)
        for r in 0..<rows {
            for c in 0..<channels {
                let normalized = (Double(x2[r * channels + c]) - stats2.mean[c]) / (stats2.variance[c] + 1e-3).squareRoot()
                reference[r * channels + c] = Double(p[c]) * normalized + Double(p[channels + c])
            }
        }
        assertClose(y[...], reference, 1e-5, "training output")
        for c in 0..<channels {
            expectedMean[c] = 0.99 * expectedMean[c] + 0.01 * stats2.mean[c]
            expectedVariance[c] = 0.99 * expectedVariance[c] + 0.01 * stats2.variance[c]
        }
        XCTAssertEqual(layer.lastTotalRows, rows)
        assertClose(network.state.values[0..<channels], expectedMean, 1e-6, "moving mean after two steps")
        assertClose(network.state.values[channels...], expectedVariance, 1e-6, "moving variance after two steps")
    }

    func testInferenceUsesMovingStatisticsAndLeavesThem() {
        let (batch, channels) = (5, 12)
        let network = Sequential([BatchNormalization(channels)], maxBatch: batch)
        network.initializeParameters(seed: 1)
        let p = network.parameters.values.baseAddress!, s = network.state.values.baseAddress!
        RandomStream(seed: 1).fillUniform(p, count: 2 * channels, low: -2, high: 2)
        RandomStream(seed: 2).fillUniform(s, count: channels, low: -1, high: 1)
        RandomStream(seed: 3).fillUniform(s + channels, count: channels, low: 0.1, high: 3)
        let state = Array(network.state.values)
        let x = random(batch * channels, seed: 4)
        let y = forward(network, x, batch: batch, training: false)
        var reference = [Double](repeating: 0, count: x.count)
        for r in 0..<batch {
            for c in 0..<channels {
                let normalized = (Double(x[r * channels + c]) - Double(s[c])) / (Double(s[channels + c]) + 1e-3).squareRoot()
                reference[r * channels + c] = Double(p[c]) * normalized + Double(p[channels + c])
            }
        }
        assertClose(y[...], reference, 1e-5, "inference output")
        XCTAssertEqual(Array(network.state.values), state)
        // Each example alone comes out the same: nothing depends on the batch.
        let alone = forward(network, Array(x[channels..<(2 * channels)]), batch: 1, training: false)
        XCTAssertEqual(alone, Array(y[channels..<(2 * channels)]))
    }

    // MARK: Synchronized statistics

    /// Replica A (3 examples) and replica B (5), each with its own layer and reducer, against one
    /// layer with all 8 examples: outputs, input gradients, gamma/beta gradients (A's + B's) and
    /// moving statistics agree, over three steps.
    ///
    /// Without threads: a reducer adds a peer's buffer that was recorded beforehand. B's local
    /// sums are first recorded by a probe pass whose effects are discarded (its state restored,
    /// its output and gradients overwritten), then A runs with them, then B with A's.
    func testSynchronizedReplicasMatchOneReplicaWithTheWholeBatch() {
        let (height, width, channels) = (2, 3, 19)
        let (batchA, batchB) = (3, 5), total = batchA + batchB
        let count = height * width * channels
        func replica(_ maxBatch: Int) -> (Sequential, BatchNormalization) {
            let layer = BatchNormalization(channels, height: height, width: width)
            let network = Sequential([layer], maxBatch: maxBatch)
            network.initializeParameters(seed: 1)
            RandomStream(seed: 7).fillUniform(network.parameters.values.baseAddress!, count: 2 * channels,
                                              low: 0.5, high: 1.5)
            return (network, layer)
        }
        let (single, _) = replica(total), (a, layerA) = replica(batchA), (b, layerB) = replica(batchB)
        let reducerA = ExchangeReducer(), reducerB = ExchangeReducer()
        layerA.reducer = reducerA
        layerB.reducer = reducerB
        let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: total * count)
        let dy = UnsafeMutableBufferPointer<Float>.allocate(capacity: total * count)
        defer { x.deallocate(); dy.deallocate() }
        let xA = UnsafePointer(x.baseAddress!), xB = xA + batchA * count
        let dyA = UnsafePointer(dy.baseAddress!), dyB = dyA + batchA * count
        let training = ForwardContext(training: true)
        let both = BackwardOptions(parameterGradients: true, inputGradient: true)

        for step in 0..<3 {
            RandomStream(seed: 10, UInt64(step)).fillNormal(x.baseAddress!, count: x.count)
            for i in x.indices { x[i] = x[i] * 2 + Float(i % channels) * 0.25 + Float(step) }
            RandomStream(seed: 20, UInt64(step)).fillNormal(dy.baseAddress!, count: dy.count)

            let y = Array(UnsafeBufferPointer(start: single.forward(xA, batch: total, context: training), count: x.count))
            single.parameters.zeroGradients()
            let dx = Array(UnsafeBufferPointer(start: single.backward(dyA, batch: total, options: both)!, count: x.count))

            // Forward: probe B for its local sums, then A with them, then B with A's.
            let savedState = Array(b.state.values)
            reducerB.peer = nil
            _ = b.forward(xB, batch: batchB, context: training)
            let sumsB = reducerB.sent.last!
            _ = b.state.values.update(fromContentsOf: savedState)
            reducerA.peer = sumsB
            let yA = Array(UnsafeBufferPointer(start: a.forward(xA, batch: batchA, context: training), count: batchA * count))
            reducerB.peer = reducerA.sent.last!
            let yB = Array(UnsafeBufferPointer(start: b.forward(xB, batch: batchB, context: training), count: batchB * count))
            XCTAssertEqual(reducerA.sent.last!.count, 2 * channels + 1, "forward's one call: [Σx, Σx², rows]")
            XCTAssertEqual(reducerA.sent.last!.last, Double(batchA * height * width))
            XCTAssertEqual(sumsB.last, Double(batchB * height * width))
            XCTAssertEqual(layerA.lastTotalRows, total * height * width)
            XCTAssertEqual(layerB.lastTotalRows, total * height * width)

            // Backward: the same, B's probe asking for no parameter gradients.
            a.parameters.zeroGradients()
            b.parameters.zeroGradients()
            reducerB.peer = nil
            b.backward(dyB, batch: batchB, options: .init(parameterGradients: false, inputGradient: true))
            reducerA.peer = reducerB.sent.last!
            let dxA = Array(UnsafeBufferPointer(start: a.backward(dyA, batch: batchA, options: both)!, count: batchA * count))
            reducerB.peer = reducerA.sent.last!
            let dxB = Array(UnsafeBufferPointer(start: b.backward(dyB, batch: batchB, options: both)!, count: batchB * count))
            XCTAssertEqual(reducerA.sent.last!.count, 2 * channels, "backward's one call: [Σdy, Σdy·x̂]")

            let what = "step \(step)"
            assertClose((yA + yB)[...], y.map(Double.init), 1e-5, "\(what): outputs")
            assertClose((dxA + dxB)[...], dx.map(Double.init), 1e-5, "\(what): input gradients")
            let summed = zip(a.parameters.gradients, b.parameters.gradients).map { Double($0) + Double($1) }
            assertClose(single.parameters.gradients[...], summed, 1e-5, "\(what): gamma and beta gradients")
            let state = single.state.values.map(Double.init)
            assertClose(a.state.values[...], state, 1e-5, "\(what): A's moving statistics")
            assertClose(b.state.values[...], state, 1e-5, "\(what): B's moving statistics")
        }

        // And the check has teeth: A normalizing alone differs from the whole batch.
        layerA.reducer = nil
        let alone = Array(UnsafeBufferPointer(start: a.forward(xA, batch: batchA, context: training), count: batchA * count))
        let together = Array(UnsafeBufferPointer(start: single.forward(xA, batch: total, context: training), count: batchA * count))
        XCTAssertGreaterThan(zip(alone, together).map { abs($0 - $1) }.max()!, 0.01)
    }

    // MARK: Helpers

    func random(_ count: Int, seed: UInt64) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        RandomStream(seed: seed, 100).fillNormal(&values, count: count)
        return values
    }

    func forward(_ network: Sequential, _ x: [Float], batch: Int, training: Bool) -> [Float] {
        x.withUnsafeBufferPointer { x in
            let y = network.forward(x.baseAddress!, batch: batch, context: .init(training: training))
            return Array(UnsafeBufferPointer(start: y, count: batch * network.outputCount))
        }
    }

    /// Per-channel mean and biased variance of a `rows x channels` matrix, two-pass in Double.
    func statistics(_ x: [Float], rows: Int, channels: Int) -> (mean: [Double], variance: [Double]) {
        var mean = [Double](repeating: 0, count: channels), variance = mean
        for r in 0..<rows { for c in 0..<channels { mean[c] += Double(x[r * channels + c]) } }
        for c in 0..<channels { mean[c] /= Double(rows) }
        for r in 0..<rows {
            for c in 0..<channels { let d = Double(x[r * channels + c]) - mean[c]; variance[c] += d * d }
        }
        for c in 0..<channels { variance[c] /= Double(rows) }
        return (mean, variance)
    }

    func assertClose<C: Collection>(_ actual: C, _ expected: [Double], _ tolerance: Double, _ what: String,
                                    file: StaticString = #filePath, line: UInt = #line) where C.Element == Float {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        var worst = 0.0, worstIndex = 0
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            let error = abs(Double(a) - e) / max(1, abs(e))
            if !(error <= worst) { worst = error; worstIndex = i }
        }
        XCTAssertLessThanOrEqual(worst, tolerance, "\(what): element \(worstIndex)", file: file, line: line)
    }
}

/// A reducer for replicas simulated in one thread: records what it is given, then adds the
/// buffer its peer recorded earlier (nil: adds nothing, a probe).
final class ExchangeReducer: ReplicaReducer {
    var peer: [Double]?
    private(set) var sent: [[Double]] = []

    func sumOverReplicas(_ values: UnsafeMutableBufferPointer<Double>) {
        sent.append(Array(values))
        guard let peer else { return }
        precondition(peer.count == values.count, "replicas reduce buffers of different lengths")
        for i in values.indices { values[i] += peer[i] }
    }
}
