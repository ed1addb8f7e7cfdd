import Kernels

/// Hears a backward pass leave each layer (see `Sequential.backward`): how data-parallel
/// training starts a layer's all-reduce while backward goes on, as PyTorch DDP's hooks do.
public protocol BackwardListener: AnyObject {
    func backwardDone(layer: Int)
}

/// A network: layers applied in order, with all their parameters in one `ParameterStore`.
///
/// Shapes: input `batch x inputCount`, output `batch x outputCount`, `batch ≤ maxBatch`.
public final class Sequential {
    public let layers: [Layer]
    public let parameters: ParameterStore
    /// Non-trainable state (batch norm's running statistics), laid out like `parameters`.
    public let state: ParameterStore
    /// `parameters` and `state`: everything that determines the network's inference output.
    public var stores: [ParameterStore] { [parameters, state] }
    public let maxBatch: Int
    /// The input gradient buffers and workspace the layers share (see `NetworkMemory`).
    public let memory: NetworkMemory
    public var inputCount: Int { layers.first!.inputCount }
    public var outputCount: Int { layers.last!.outputCount }
    /// The output of the last forward pass (nil before the first).
    public private(set) var lastOutput: UnsafePointer<Float>?
    /// Double backpropagation's buffers (a critic with a gradient penalty), made on first use.
    lazy var doubleBackwardMemory = DoubleBackwardMemory(layers: layers, maxBatch: maxBatch)
    /// Hears every layer's forward and backward pass (nil: none, the default).
    public var observer: LayerObserver?

    /// Builds the network, lays out its parameters (named `"<index>.<name>"`, e.g.
    /// `"0.kernel"`), and allocates every activation buffer for `maxBatch`. Networks that run
    /// one layer call at a time between them (a GAN's two) may pass one `workspace`.
    public init(_ layers: [Layer], maxBatch: Int, workspace: Workspace = Workspace()) {
        precondition(!layers.isEmpty, "a network needs at least one layer")
        for (a, b) in zip(layers, layers.dropFirst()) {
            precondition(a.outputCount == b.inputCount,
                         "layer sizes do not chain: \(a.outputCount) outputs feed \(b.inputCount) inputs")
        }
        self.layers = layers
        self.maxBatch = maxBatch
        memory = NetworkMemory(workspace: workspace)
        var layout = ParameterLayout()
        for (i, layer) in layers.enumerated() { layer.declareParameters(prefix: "\(i).", in: &layout) }
        parameters = ParameterStore(entries: layout.entries)
        var stateLayout = ParameterLayout()
        for (i, layer) in layers.enumerated() { layer.declareState(prefix: "\(i).", in: &stateLayout) }
        state = ParameterStore(entries: stateLayout.entries)
        for layer in layers {
            layer.bind(to: parameters)
            layer.bindState(to: state)
            layer.allocate(maxBatch: maxBatch, memory: memory)
        }
    }

    /// Initializes every layer's parameters from one seed (each layer its own stream).
    public func initializeParameters(seed: UInt64) {
        for (i, layer) in layers.enumerated() {
            layer.initializeParameters(random: RandomStream(seed: seed, UInt64(i)))
        }
    }

    /// Returns the network's output for `batch` examples, valid until the next forward.
    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        precondition(batch <= maxBatch, "batch \(batch) exceeds the network's maximum \(maxBatch)")
        var x = input
        var layerContext = context
        for (i, layer) in layers.enumerated() {
            layerContext.random = RandomStream(seed: context.random.key, UInt64(i))
            observer?.begin(layer: i, .forward)
            x = layer.forward(x, batch: batch, context: layerContext)
            observer?.end(layer: i, .forward)
        }
        lastOutput = x
        return x
    }

    /// Backpropagates ∂loss/∂output through the layers of the last forward pass; returns
    /// ∂loss/∂input when `options.inputGradient`, else nil, valid until this network's next
    /// backward. Parameter gradients are added to `parameters.gradients` (zero them before a
    /// new step). `listener` hears each layer's backward end, last layer first: from then on,
    /// this pass adds nothing more to that layer's gradients (`parameterRange(ofLayer:)`).
    @discardableResult
    public func backward(_ outputGradient: UnsafePointer<Float>, batch: Int,
                         options: BackwardOptions = .init(), listener: BackwardListener? = nil) -> UnsafePointer<Float>? {
        var dy = outputGradient
        for (i, layer) in layers.enumerated().reversed() {
            let pass = backwardPass(ofLayer: i, options)
            observer?.begin(layer: i, pass)
            let dx = layer.backward(dy, batch: batch, parameterGradients: options.parameterGradients,
                                    needInputGradient: needsInputGradient(layer: i, options))
            observer?.end(layer: i, pass)
            listener?.backwardDone(layer: i)
            guard let dx else { return nil }
            dy = dx
        }
        return dy
    }

    /// The elements of `parameters` (and of its gradients) that belong to layer `i`: one
    /// contiguous range, empty for a layer without parameters. Layers lie in order, so the
    /// ranges of layers `i...` are the buffer's tail from layer `i`'s start.
    public func parameterRange(ofLayer i: Int) -> Range<Int> {
        let mine = parameters.entries.filter { $0.name.hasPrefix("\(i).") }
        guard let first = mine.map(\.offset).min() else {
            // Empty, at the start of the next layer's parameters (or the end).
            let next = parameters.entries.filter { Int($0.name.prefix { $0 != "." })! > i }.map(\.offset).min()
            return (next ?? parameters.count) ..< (next ?? parameters.count)
        }
        return first ..< mine.map { $0.offset + $0.count }.max()!
    }

    /// What layer `i` computes in `backward(options:)`.
    public func backwardPass(ofLayer i: Int, _ options: BackwardOptions) -> LayerPass {
        .backward(parameterGradients: options.parameterGradients, inputGradient: needsInputGradient(layer: i, options))
    }

    /// Every layer but the first passes its input gradient on; the first's only the caller can want.
    private func needsInputGradient(layer i: Int, _ options: BackwardOptions) -> Bool {
        i > 0 || options.inputGradient
    }

    /// FLOPs of each layer in one forward pass (`options` nil) or one `backward(options:)`
    /// over `batch` examples; see `Layer.forwardFLOPs` for what counts.
    public func layerFLOPs(batch: Int, backward options: BackwardOptions? = nil) -> [Int] {
        layers.indices.map { i in
            layers[i].flops(batch: batch, options.map { backwardPass(ofLayer: i, $0) } ?? .forward)
        }
    }
}
