import XCTest
@testable import NN

/// Reshape and Flatten move no data: the input pointer out, dy back.
final class ReshapeTests: XCTestCase {
    func testReshapeIsANoOp() {
        let reshape = Reshape([7, 7, 4])
        XCTAssertEqual(reshape.inputCount, 196)
        XCTAssertEqual(reshape.outputCount, 196)
        XCTAssertEqual(reshape.outputShape, [7, 7, 4])
        let flatten = Reshape(flattening: [3, 3, 2])
        XCTAssertEqual(flatten.outputShape, [18])
        let x = [Float](repeating: 1.5, count: 2 * 196)
        x.withUnsafeBufferPointer { x in
            let input = x.baseAddress!
            XCTAssertEqual(reshape.forward(input, batch: 2, context: .init(training: true)), input)
            XCTAssertEqual(reshape.backward(input, batch: 2, parameterGradients: true, needInputGradient: true), input)
            XCTAssertNil(reshape.backward(input, batch: 2, parameterGradients: true, needInputGradient: false))
        }
        checkGradients(Sequential([Reshape([2, 3, 5])], maxBatch: 3), batch: 3)
        // In a network it chains like any layer.
        let network = Sequential([Reshape(flattening: [2, 2, 3]), Reshape([2, 2, 3])], maxBatch: 1)
        XCTAssertEqual(network.inputCount, 12)
        XCTAssertEqual(network.outputCount, 12)
    }
}
