import Kernels

/// Inverted dropout, as Keras's `Dropout(rate)`: in training each value is kept with
/// probability `1 - rate` and scaled by `1 / (1 - rate)`, else zeroed; in inference (and at
/// rate 0) the output is a copy of the input.
///
/// Shapes: x and y are `batch x count` (any per-example layout, NHWC included).
///
/// The mask is a pure function of the context's stream (`Sequential` gives each layer its own)
/// and of the global position: value f of local example b is dropped when
/// `random.unitFloat(at: (firstExample + b) · count + f) < rate`. N ranks with their slices of a
/// batch therefore draw what one rank with the whole batch draws, and threads could fill
/// disjoint ranges. The mask (0 or 1/(1 - rate) per value) is kept for the backward pass.
public final class Dropout: Layer {
    public let inputCount: Int
    public var outputCount: Int { inputCount }
    public let rate: Float
    private var output = LayerBuffer(), mask = LayerBuffer()
    private var memory: NetworkMemory!
    private var lastMasked = false, lastBatch = 0
    private let backend: Backend

    public init(_ count: Int, rate: Float, backend: Backend) {
        precondition(rate >= 0 && rate < 1, "dropout rate \(rate) is outside [0, 1)")
        inputCount = count
        self.rate = rate
        self.backend = backend
    }

    deinit { output.free(); mask.free() }

    public func allocate(maxBatch: Int, memory: NetworkMemory) {
        output.reserve(maxBatch * inputCount)
        mask.reserve(maxBatch * inputCount)
        memory.reserveInputGradient(maxBatch * inputCount)
        self.memory = memory
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let count = batch * inputCount, y = output.base
        lastBatch = batch
        lastMasked = context.training && rate > 0
        guard lastMasked else {
            y.update(from: input, count: count)
            return UnsafePointer(y)
        }
        let m = mask.base
        backend.dropoutMask(m, count: count, stream: context.random, first: UInt64(context.firstExample * inputCount),
                            rate: rate, keep: 1 / (1 - rate))
        multiply(input, m, y, count: count)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, parameterGradients: Bool,
                         needInputGradient: Bool) -> UnsafePointer<Float>? {
        precondition(batch == lastBatch, "backward's batch \(batch) differs from forward's \(lastBatch)")
        guard needInputGradient else { return nil }
        let count = batch * inputCount, dx = memory.inputGradient(avoiding: dy)
        if lastMasked {
            multiply(dy, mask.base, dx, count: count)
        } else {
            dx.update(from: dy, count: count)
        }
        return UnsafePointer(dx)
    }

    /// z = x · m elementwise.
    private func multiply(_ x: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                          _ z: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count { store8(load8(x + i) * load8(m + i), z + i); i += 8 }
        while i < count { z[i] = x[i] * m[i]; i += 1 }
    }
}

extension Dropout: DoubleBackwardLayer {
    /// Backward is dx = m ⊙ dy with the forward pass's mask: ∂P/∂dy = m ⊙ u.
    public func backwardOfInputGradient(_ u: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                                        batch: Int, into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        precondition(batch == lastBatch, "double backward's batch \(batch) differs from forward's \(lastBatch)")
        if lastMasked {
            multiply(u, mask.base, output, count: batch * inputCount)
        } else {
            output.update(from: u, count: batch * inputCount)
        }
        return UnsafePointer(output)
    }
}
