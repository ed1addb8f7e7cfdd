/// Keras's `Reshape` and `Flatten`: a change of per-example shape over contiguous NHWC memory,
/// which moves no data.
///
/// Shapes: x is `batch x inputCount` in any layout, y is `[batch] + outputShape` with the same
/// count. Forward returns its input pointer and backward returns dy, so the pointers are valid
/// as long as the neighbouring layer's (or the caller's) buffers are.
public final class Reshape: Layer {
    public let outputShape: [Int]
    public let inputCount: Int
    public var outputCount: Int { inputCount }

    /// `Reshape([7, 7, 256])`: any input of 7·7·256 values per example.
    public init(_ outputShape: [Int]) {
        precondition(!outputShape.isEmpty && outputShape.allSatisfy { $0 > 0 },
                     "a reshape needs positive dimensions, got \(outputShape)")
        self.outputShape = outputShape
        inputCount = outputShape.reduce(1, *)
    }

    /// `Reshape(flattening: [7, 7, 128])`: Keras's `Flatten` of that shape, to `[6272]`.
    public convenience init(flattening inputShape: [Int]) {
        self.init([inputShape.reduce(1, *)])
    }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {}

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        input
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        needInputGradient ? dy : nil
    }
}
