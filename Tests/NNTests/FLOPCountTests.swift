import Backends
import Kernels
import XCTest
@testable import NN

/// Each layer's analytic FLOP count against the multiplies its passes really run (recorded
/// by `GEMMRecorder`), for every combination of gradients a backward pass can be asked for.
final class FLOPCountTests: XCTestCase {
    func testCountsAreTheMultipliesEachPassRuns() throws {
        let recorder = GEMMRecorder(try Backends.make(try Backends.choose()))
        let batch = 3
        // 6x5x3 -> 3x3x4 (same padding, stride 2): taps inside the image per output row
        // 3, 3, 2 (8) and per column 2, 3, 2 (7): 56 of the 81 (pixel, tap) pairs.
        func conv(_ algorithm: ConvolutionAlgorithm) -> Layer {
            Conv2D(inputHeight: 6, inputWidth: 5, inputChannels: 3, filters: 4, kernelSize: 3, stride: 2,
                   algorithm: algorithm, backend: recorder)
        }
        // 3x4x5 -> 6x8x2: its adjoint convolution maps 6x8x2 -> 3x4x5 with 5x5 taps; inside the
        // image per row 4, 5, 3 (12) and per column 4, 5, 5, 3 (17): 204 of 300 pairs.
        func convT(_ algorithm: ConvolutionAlgorithm) -> Layer {
            ConvTranspose2D(inputHeight: 3, inputWidth: 4, inputChannels: 5, filters: 2, kernelSize: 5, stride: 2,
                            algorithm: algorithm, backend: recorder)
        }
        // The tap-by-tap path runs exactly the counted products; im2col runs the padded ones too.
        let layers: [(Layer, expectedForward: Int, padded: Int?)] = [
            (Dense(7, 5, backend: recorder), 2 * batch * 7 * 5, nil),
            (Dense(7, 5, bias: false, backend: recorder), 2 * batch * 7 * 5, nil),
            (conv(.taps), 2 * batch * 56 * 3 * 4, nil),
            (conv(.im2col), 2 * batch * 56 * 3 * 4, 2 * batch * 81 * 3 * 4),
            (convT(.taps), 2 * batch * 204 * 2 * 5, nil),
            (convT(.im2col), 2 * batch * 204 * 2 * 5, 2 * batch * 300 * 2 * 5),
            (LeakyReLU(10, slope: 0.1, backend: recorder), 0, nil),
            (BatchNormalization(4, height: 2, width: 2), 0, nil),
        ]
        func recordedFLOPs(_ body: () -> Void) -> Int {
            recorder.reset()
            body()
            return recorder.shapes.reduce(0) { $0 + $1.calls * $1.shape.flops }
        }
        for (layer, expectedForward, padded) in layers {
            let name = "\(type(of: layer))"
            let network = Sequential([layer], maxBatch: batch)
            network.initializeParameters(seed: 1)
            var x = [Float](repeating: 0, count: batch * layer.inputCount)
            RandomStream(seed: 2).fillUniform(&x, count: x.count, low: -1, high: 1)
            let dy = [Float](repeating: 0.5, count: batch * layer.outputCount)

            XCTAssertEqual(layer.forwardFLOPs(batch: batch), expectedForward, name)
            let forward = recordedFLOPs { _ = network.forward(x, batch: batch, context: ForwardContext(training: true)) }
            // What the multiplies ran, scaled back from padded to counted products where im2col ran.
            func counted(_ ran: Int) -> Int { padded.map { ran * expectedForward / $0 } ?? ran }
            XCTAssertEqual(forward, padded ?? expectedForward, name)
            XCTAssertEqual(network.layerFLOPs(batch: batch), [counted(forward)], name)
            for (parameterGradients, inputGradient) in [(true, false), (false, true), (true, true)] {
                let options = BackwardOptions(parameterGradients: parameterGradients, inputGradient: inputGradient)
                let backward = counted(recordedFLOPs { _ = network.backward(dy, batch: batch, options: options) })
                XCTAssertEqual(backward, layer.backwardFLOPs(batch: batch, parameterGradients: parameterGradients,
                                                             inputGradient: inputGradient), "\(name) \(options)")
                XCTAssertEqual(network.layerFLOPs(batch: batch, backward: options), [backward], "\(name) \(options)")
            }
        }
    }

    /// The first layer's input gradient only when asked for; every other layer's always.
    func testBackwardPassOfEachLayer() {
        let backend = ReferenceBackend()
        let network = Sequential([Dense(4, 3, backend: backend), LeakyReLU(3, slope: 0.2, backend: backend),
                                  Dense(3, 2, backend: backend)], maxBatch: 2)
        let weightsOnly = BackwardOptions(parameterGradients: true, inputGradient: false)
        XCTAssertEqual(network.backwardPass(ofLayer: 0, weightsOnly), .backward(parameterGradients: true, inputGradient: false))
        XCTAssertEqual(network.backwardPass(ofLayer: 2, weightsOnly), .backward(parameterGradients: true, inputGradient: true))
        XCTAssertEqual(network.layerFLOPs(batch: 2, backward: weightsOnly), [2 * 2 * 4 * 3, 0, 2 * (2 * 2 * 3 * 2)])
    }
}
