import XCTest
import Backends
import Kernels
@testable import NN

/// Double backpropagation (WGAN-GP's penalty gradient) against finite differences: for a
/// critic D with one output per example and g = ∂D/∂x per example, the gradient of
/// P(θ) = Σ r ⊙ g + ½ Σ g² (so u = ∂P/∂g = r + g) with respect to every parameter.
final class DoubleBackwardTests: XCTestCase {
    let backend = Backends.automatic()

    /// The layers of the WGAN-GP critics: Conv2D both ways (im2col; tap by tap), LeakyReLU,
    /// Reshape (Flatten), Dense, on odd shapes. Few units, so that few sit near a kink.
    func testConvolutionalCritic() {
        let critic = Sequential([
            Conv2D(inputHeight: 5, inputWidth: 4, inputChannels: 1, filters: 3, kernelSize: 3, stride: 2,
                   algorithm: .im2col, backend: backend),
            LeakyReLU(3 * 2 * 3, slope: 0.2, backend: backend),
            Conv2D(inputHeight: 3, inputWidth: 2, inputChannels: 3, filters: 5, kernelSize: 3, stride: 1,
                   algorithm: .taps, backend: backend),
            LeakyReLU(3 * 2 * 5, slope: 0.2, backend: backend),
            Reshape(flattening: [3, 2, 5]),
            Dense(3 * 2 * 5, 1, backend: backend),
        ], maxBatch: 2)
        checkPenaltyGradient(critic, batch: 2)
    }

    func testLinearConvolutions() {
        for algorithm in [ConvolutionAlgorithm.im2col, .taps] {
            let critic = Sequential([
                Conv2D(inputHeight: 7, inputWidth: 5, inputChannels: 1, filters: 16, kernelSize: 3, stride: 2,
                       algorithm: algorithm, backend: backend),
                Reshape(flattening: [4, 3, 16]),
                Dense(4 * 3 * 16, 1, backend: backend),
            ], maxBatch: 3)
            checkPenaltyGradient(critic, batch: 3)
        }
    }

    func testMLPCriticWithDropout() {
        let critic = Sequential([
            Dense(13, 9, backend: backend),
            LeakyReLU(9, slope: 0.01, backend: backend),
            Dropout(9, rate: 0.3, backend: backend),
            Dense(9, 1, backend: backend),
        ], maxBatch: 5)
        checkPenaltyGradient(critic, batch: 5,
                             context: ForwardContext(training: true, random: RandomStream(seed: 7, 1), firstExample: 4))
    }

    /// Batch normalization is not piecewise linear: a network holding one says so.
    func testBatchNormalizationHasNoDoubleBackward() {
        let network = Sequential([Dense(4, 3, backend: backend), BatchNormalization(3), Dense(3, 1, backend: backend)],
                                 maxBatch: 2)
        XCTAssertFalse(network.supportsDoubleBackward)
        XCTAssertTrue(network.firstLayerWithoutDoubleBackward is BatchNormalization)
    }

    func checkPenaltyGradient(_ critic: Sequential, batch: Int, context: ForwardContext = .init(training: true),
                              file: StaticString = #filePath, line: UInt = #line) {
        let inputs = batch * critic.inputCount
        var x = [Float](repeating: 0, count: inputs), r = x
        RandomStream(seed: 3, 1).fillNormal(&x, count: inputs)
        RandomStream(seed: 3, 2).fillNormal(&r, count: inputs)
        critic.initializeParameters(seed: 5)
        for e in critic.parameters.entries where e.name.hasSuffix("bias") {
            RandomStream(seed: 3, 4).fillUniform(critic.parameters.values.baseAddress! + e.offset, count: e.count,
                                                 low: -0.5, high: 0.5)
        }

        func penalty() -> (value: Double, u: [Float]) {
            _ = critic.forward(x, batch: batch, context: context)
            let g = critic.inputGradientForDoubleBackward(batch: batch)
            var value = 0.0, u = [Float](repeating: 0, count: inputs)
            for i in 0 ..< inputs {
                value += Double(r[i]) * Double(g[i]) + 0.5 * Double(g[i]) * Double(g[i])
                u[i] = r[i] + g[i]
            }
            return (value, u)
        }

        critic.parameters.zeroGradients()
        let (_, u) = penalty()
        critic.backwardOfInputGradient(u, batch: batch)
        let analytic = Array(critic.parameters.gradients)
        // P is piecewise quadratic in θ: a step that moves some LeakyReLU input across its kink
        // changes g by a jump, which central differences cannot see past. Such coordinates
        // show a second difference far above a quadratic's h²·P'' and are left out (few).
        var compared = 0, nonzero = 0, kinked = 0
        let p = critic.parameters.values.baseAddress!, h: Float = 1e-3
        let base = penalty().value
        for e in critic.parameters.entries {
            for i in e.offset ..< e.offset + e.count {
                let saved = p[i]
                p[i] = saved + h; let plus = penalty().value
                p[i] = saved - h; let minus = penalty().value
                p[i] = saved
                if abs(plus - 2 * base + minus) > 1e-4 { kinked += 1; continue }
                let numeric = (plus - minus) / Double(2 * h)
                compared += 1
                if abs(numeric) > 1e-2 { nonzero += 1 }
                XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 3e-3 * max(1, abs(numeric)),
                               "∂P/∂\(e.name)[\(i - e.offset)]", file: file, line: line)
            }
        }
        XCTAssertLessThan(kinked, compared / 10, "too many steps crossed a kink", file: file, line: line)
        XCTAssertGreaterThan(nonzero, 10, "the check compared mostly zeros", file: file, line: line)
    }
}
