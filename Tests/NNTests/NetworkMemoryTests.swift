import XCTest
import Backends
@testable import NN

/// The memory layers share: the two input gradient buffers a network's backward pass
/// alternates between, and the per-call workspace.
final class NetworkMemoryTests: XCTestCase {
    let backend = Backends.automatic()

    func testEachLayerWritesIntoTheBufferItsOutputGradientIsNotIn() {
        let memory = NetworkMemory()
        memory.reserveInputGradient(10)
        let outside = [Float](repeating: 0, count: 10)
        outside.withUnsafeBufferPointer { outside in
            let first = memory.inputGradient(avoiding: outside.baseAddress!)
            XCTAssertEqual(memory.inputGradient(avoiding: first), memory.inputGradient(avoiding: first + 9),
                           "anywhere in the first buffer")
            let second = memory.inputGradient(avoiding: first)
            XCTAssertNotEqual(second, first)
            XCTAssertEqual(memory.inputGradient(avoiding: second), first)
            XCTAssertEqual(memory.inputGradient(avoiding: first + 10), first, "just past the first buffer")
        }
    }

    func testSizedForTheLargestLayerAndSharedWorkspace() {
        let workspace = Workspace()
        // ConvT 3x3x4 -> 6x6x3 (k 5, s 2): columns 9 x 75 per example; Conv 6x6x3 -> 3x3x2: 9 x 75.
        let a = Sequential([
            ConvTranspose2D(inputHeight: 3, inputWidth: 3, inputChannels: 4, filters: 3, kernelSize: 5, stride: 2,
                            backend: backend),
            LeakyReLU(6 * 6 * 3, slope: 0.3, backend: backend),
        ], maxBatch: 2, workspace: workspace)
        let b = Sequential([
            Conv2D(inputHeight: 6, inputWidth: 6, inputChannels: 3, filters: 2, kernelSize: 3, stride: 1, backend: backend),
            Reshape([72]),
            Dense(72, 1, backend: backend),
        ], maxBatch: 2, workspace: workspace)
        XCTAssertTrue(a.memory.workspace === b.memory.workspace)
        XCTAssertEqual(workspace.capacity, max(2 * 9 * 75, 2 * 36 * 27))
        XCTAssertEqual(a.memory.inputGradientCapacity, 2 * 108, "the largest layer input")
        XCTAssertEqual(b.memory.inputGradientCapacity, 2 * 108)
    }
}

extension FiniteDifferenceTests {
    /// The two buffers alternate through layers that write a gradient and through Reshape,
    /// which hands its ∂loss/∂output on as its ∂loss/∂input.
    func testGradientsThroughAlternatingBuffers() {
        let network = Sequential([
            Dense(5, 12, backend: backend),
            Reshape([2, 2, 3]),
            Conv2D(inputHeight: 2, inputWidth: 2, inputChannels: 3, filters: 4, kernelSize: 3, backend: backend),
            Tanh(16, backend: backend),
            Reshape([16]),
            Reshape([4, 4]),
            Dense(16, 3, backend: backend),
        ], maxBatch: 2)
        check(network, batch: 2, seed: 5, h: 1e-3)
    }
}
