import XCTest
import Kernels
import Backends
@testable import NN

/// Every layer's backward pass against central finite differences of a scalar loss
/// `L = Σ r ⊙ y` (a fixed random projection r of the output, so ∂L/∂y = r).
final class FiniteDifferenceTests: XCTestCase {
    let backend = Backends.automatic()

    /// Checks ∂L/∂input and ∂L/∂parameters of `network` at a random input of `batch` examples
    /// (see `checkGradients`).
    func check(_ network: Sequential, batch: Int, awayFromZero: Bool = false, seed: UInt64 = 1, h: Float = 1e-2,
               file: StaticString = #filePath, line: UInt = #line) {
        checkGradients(network, batch: batch, seed: seed, h: h, awayFromZero: awayFromZero, file: file, line: line)
    }

    func testDense() {
        for (inputs, outputs, batch) in [(1, 1, 1), (7, 5, 3), (33, 17, 9), (100, 1, 4)] {
            check(Sequential([Dense(inputs, outputs, backend: backend)], maxBatch: batch), batch: batch)
        }
        check(Sequential([Dense(13, 6, bias: false, backend: backend)], maxBatch: 5), batch: 5)
    }

    func testLeakyReLU() {
        for slope: Float in [0.01, 0.3] {
            check(Sequential([LeakyReLU(37, slope: slope, backend: backend)], maxBatch: 3), batch: 3, awayFromZero: true)
        }
    }

    func testTanh() {
        check(Sequential([Tanh(29, backend: backend)], maxBatch: 4), batch: 4)
    }

    func testStackedMLP() {
        let network = Sequential([
            Dense(11, 9, backend: backend), LeakyReLU(9, slope: 0.01, backend: backend),
            Dense(9, 13, backend: backend), Tanh(13, backend: backend),
        ], maxBatch: 8)
        // A small step: a weight's perturbation moves hidden pre-activations, and h = 1e-2 can
        // carry one across the LeakyReLU kink.
        check(network, batch: 6, seed: 5, h: 1e-3)
    }

    func testBackwardAccumulatesParameterGradientsAndCanSkipThem() {
        let network = Sequential([Dense(4, 3, backend: backend)], maxBatch: 2)
        network.initializeParameters(seed: 9)
        let x: [Float] = [1, 2, 3, 4, -1, 0.5, 0, 2], dy: [Float] = [1, 0, -1, 0.5, 2, 1]
        _ = network.forward(x, batch: 2, context: .init(training: true))
        network.parameters.zeroGradients()
        network.backward(dy, batch: 2)
        let once = Array(network.parameters.gradients)
        network.backward(dy, batch: 2)
        XCTAssertEqual(Array(network.parameters.gradients), once.map { $0 * 2 })
        network.backward(dy, batch: 2, options: .init(parameterGradients: false, inputGradient: true))
        XCTAssertEqual(Array(network.parameters.gradients), once.map { $0 * 2 })
        // Bias gradient is the column sum of dy; the kernel gradient's row 0 is x[:,0]ᵀ·dy.
        XCTAssertEqual(Array(once[12..<15]), [1.5, 2, 0])
        let expectedRow0: [Float] = [0.5, -2, -2] // x[:,0] = (1, -1): (1·1 - 0.5, 1·0 - 2, 1·-1 - 1)
        XCTAssertEqual(Array(once[0..<3]), expectedRow0)
    }

    func testParameterLayoutIsContiguousAndNamed() {
        let network = Sequential([Dense(3, 4, backend: backend), LeakyReLU(4, slope: 0.1, backend: backend),
                                  Dense(4, 2, bias: false, backend: backend)], maxBatch: 1)
        XCTAssertEqual(network.parameters.entries.map(\.name), ["0.kernel", "0.bias", "2.kernel"])
        XCTAssertEqual(network.parameters.entries.map(\.offset), [0, 12, 16])
        XCTAssertEqual(network.parameters.count, 24)
        network.initializeParameters(seed: 1)
        let before = network.parameters.checksum()
        network.parameters.values[23] += 1e-6
        XCTAssertNotEqual(network.parameters.checksum(), before)
    }
}
