import Kernels

/// A layer whose backward pass can itself be differentiated: what WGAN-GP's gradient penalty
/// needs, a loss on ∂D/∂input whose gradient with respect to D's parameters flows back through
/// D's backward pass ("double backpropagation").
///
/// Every layer that conforms is piecewise linear in its input: its backward pass is
/// `dx = Jᵀ · dy` with a Jacobian J that depends on the parameters but not (away from a set of
/// measure zero: LeakyReLU's kink, which autodiff frameworks treat the same way) on the
/// input. So for a loss P of dx, given `u = ∂P/∂dx`:
///
/// - ∂P/∂dy = J · u: the layer's forward map without its bias, applied to u (the tangent).
/// - ∂P/∂θ = ∂(uᵀ Jᵀ dy)/∂θ: for a kernel, the kernel gradient with u in place of the input
///   (dW = uᵀ · dy); biases do not enter J, so they get nothing.
///
/// Batch normalization, tanh and sigmoid are not piecewise linear and do not conform; a critic
/// holding one is refused before training (`Sequential.supportsDoubleBackward`).
public protocol DoubleBackwardLayer: Layer {
    /// After `backward(dy, needInputGradient: true)` of this layer's last forward pass: given
    /// `tangent` = ∂P/∂dx (`batch x inputCount`), adds ∂P/∂θ into the parameter gradients and
    /// returns ∂P/∂dy (`batch x outputCount`), in `output` (or `tangent` itself, for a layer
    /// that moves no data). `outputGradient` is the dy of that backward pass.
    func backwardOfInputGradient(_ tangent: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>, batch: Int,
                                 into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>
}

extension Reshape: DoubleBackwardLayer {
    /// dx = dy: the tangent passes unchanged.
    public func backwardOfInputGradient(_ tangent: UnsafePointer<Float>, outputGradient: UnsafePointer<Float>,
                                        batch: Int, into output: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        tangent
    }
}

/// What `Sequential`'s double backward keeps between its two halves: each layer's output
/// gradient from the input-gradient pass, and two tangent buffers used in turn. Allocated on
/// the first use, for the network's largest batch.
final class DoubleBackwardMemory {
    var outputGradients: [LayerBuffer]
    var tangents = (LayerBuffer(), LayerBuffer())
    /// ∂D/∂output = 1 for every example (the network has one output per example).
    var ones = LayerBuffer()

    init(layers: [Layer], maxBatch: Int) {
        outputGradients = layers.map { layer in
            var buffer = LayerBuffer()
            buffer.reserve(maxBatch * layer.outputCount)
            return buffer
        }
        let widest = layers.map { max($0.inputCount, $0.outputCount) }.max()!
        tangents.0.reserve(maxBatch * widest)
        tangents.1.reserve(maxBatch * widest)
        ones.reserve(maxBatch)
        ones.base.update(repeating: 1, count: maxBatch)
    }

    deinit {
        for buffer in outputGradients { buffer.free() }
        tangents.0.free(); tangents.1.free(); ones.free()
    }

    /// The tangent buffer that does not hold `tangent`.
    func tangent(avoiding tangent: UnsafePointer<Float>) -> UnsafeMutablePointer<Float> {
        UnsafePointer(tangents.0.base) == tangent ? tangents.1.base : tangents.0.base
    }
}

extension Sequential {
    /// Whether every layer can be differentiated through its backward pass (see
    /// `DoubleBackwardLayer`), as a gradient penalty needs.
    public var supportsDoubleBackward: Bool { layers.allSatisfy { $0 is DoubleBackwardLayer } }

    /// The first layer that cannot (for an error message), nil when all can.
    public var firstLayerWithoutDoubleBackward: Layer? { layers.first { !($0 is DoubleBackwardLayer) } }

    /// The first half of double backpropagation, for a network with one output per example:
    /// returns g = ∂D(x)/∂x for each example x of the last forward pass (`batch x inputCount`,
    /// valid until the next backward), and keeps each layer's output gradient for
    /// `backwardOfInputGradient`. Adds nothing to the parameter gradients.
    public func inputGradientForDoubleBackward(batch: Int) -> UnsafePointer<Float> {
        precondition(outputCount == 1, "a gradient penalty needs one output per example, not \(outputCount)")
        precondition(supportsDoubleBackward, "\(type(of: firstLayerWithoutDoubleBackward!)) has no double backward")
        let saved = doubleBackwardMemory
        var dy = UnsafePointer(saved.ones.base)
        let pass = LayerPass.backward(parameterGradients: false, inputGradient: true)
        for (i, layer) in layers.enumerated().reversed() {
            saved.outputGradients[i].base.update(from: dy, count: batch * layer.outputCount)
            observer?.begin(layer: i, pass)
            dy = layer.backward(dy, batch: batch, parameterGradients: false, needInputGradient: true)!
            observer?.end(layer: i, pass)
        }
        return dy
    }

    /// The second half: given u = ∂P/∂g for the g that `inputGradientForDoubleBackward` last
    /// returned, adds ∂P/∂θ into the parameter gradients, layer by layer from the first.
    public func backwardOfInputGradient(_ u: UnsafePointer<Float>, batch: Int) {
        let saved = doubleBackwardMemory
        var tangent = u
        for (i, layer) in layers.enumerated() {
            observer?.begin(layer: i, .doubleBackward)
            tangent = (layer as! DoubleBackwardLayer).backwardOfInputGradient(
                tangent, outputGradient: saved.outputGradients[i].base, batch: batch,
                into: saved.tangent(avoiding: tangent))
            observer?.end(layer: i, .doubleBackward)
        }
    }
}
