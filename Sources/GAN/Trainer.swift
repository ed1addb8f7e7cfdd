import Backends
import Distributed
import Kernels
import NN
import Optim

/// Losses and discriminator outputs of one step on this rank (means over the local batch).
public struct StepMetrics: Sendable {
    public var discriminatorLoss: Double = 0
    public var generatorLoss: Double = 0
    /// Mean D(x) = sigmoid(logit) on real images, and mean D(G(z)) on generated ones.
    public var realScore: Double = 0
    public var fakeScore: Double = 0

    public init() {}
}

/// One data-parallel replica of a GAN: both networks, both optimizers, and the training step.
///
/// Every rank holds identical parameters. A step computes gradients on the local batch, averages
/// each network's gradients across ranks with one all-reduce of its flat gradient buffer, and
/// applies the same Adam update everywhere, so the parameters stay bit-identical (which
/// `parameterChecksumsAgree()` verifies).
public final class GANTrainer {
    public let configuration: GANConfiguration
    public let models: GANModels
    public let generatorOptimizer: Adam
    public let discriminatorOptimizer: Adam
    public let communicator: Communicator
    /// Hears the phases, layers and transfers of every step (nil: none, the default).
    public var observer: StepObserver? {
        didSet {
            exchange.observer = observer
            for role in NetworkRole.allCases { models[role].observer = observer?.layerObserver(for: role) }
        }
    }
    /// How gradients travel between the ranks.
    public var exchangeOptions: ExchangeOptions { exchange.options }
    private let exchange: GradientExchange
    private let backend: Backend

    private var generator: Sequential { models.generator }
    private var discriminator: Sequential { models.discriminator }
    private let batch: Int
    // Per-step buffers, allocated once: noise (batch x latent), targets and ∂loss/∂logit (batch).
    private let noise: UnsafeMutableBufferPointer<Float>
    private let realTargets, fakeTargets, generatorTargets: UnsafeMutableBufferPointer<Float>
    private let logitGradient, scores: UnsafeMutableBufferPointer<Float>
    /// The global step `step` is running (for errors).
    private var currentStep = 0
    /// This rank's batch of real images, for `step(data:step:)`.
    private let real: UnsafeMutableBufferPointer<Float>

    /// Builds the models; parameters are set by `initializeParameters()` or a checkpoint.
    public init(configuration: GANConfiguration, communicator: Communicator, backend: Backend = Backends.automatic(),
                exchange: ExchangeOptions = ExchangeOptions()) {
        self.configuration = configuration
        self.communicator = communicator
        self.backend = backend
        batch = configuration.batchSize
        models = GANModels(configuration: configuration, maxBatch: batch, backend: backend)
        generatorOptimizer = Adam(count: models.generator.parameters.count, config: configuration.generatorOptimizer,
                                  backend: backend)
        discriminatorOptimizer = Adam(count: models.discriminator.parameters.count, config: configuration.discriminatorOptimizer,
                                      backend: backend)
        self.exchange = GradientExchange(communicator: communicator, options: exchange, models: models, backend: backend)
        func buffer(_ count: Int, _ value: Float) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            b.initialize(repeating: value)
            return b
        }
        noise = buffer(batch * configuration.latentDimension, 0)
        realTargets = buffer(batch, 1 - configuration.labelSmoothing)
        fakeTargets = buffer(batch, 0)
        generatorTargets = buffer(batch, 1)
        logitGradient = buffer(batch, 0)
        scores = buffer(batch, 0)
        real = buffer(batch * configuration.pixelCount, 0)
        if configuration.synchronizedBatchNorm {
            let reducer = CommunicatorReducer(communicator)
            for layer in models.batchNormalizations { layer.reducer = reducer }
        }
    }

    deinit {
        for b in [noise, realTargets, fakeTargets, generatorTargets, logitGradient, scores, real] { b.deallocate() }
    }

    /// Rank 0 initializes both networks from the seed and broadcasts them, so every replica
    /// starts from rank 0's parameters whatever happens on the others.
    public func initializeParameters() throws {
        if communicator.rank == 0 { models.initialize(seed: configuration.seed) }
        try synchronizeParameters()
    }

    /// Copies rank 0's parameters and state (batch norm's running statistics) to every rank,
    /// after initialization or loading a checkpoint.
    public func synchronizeParameters() throws {
        for network in [generator, discriminator] {
            try communicator.broadcast(network.parameters.values, root: 0)
            if network.state.count > 0 { try communicator.broadcast(network.state.values, root: 0) }
        }
    }

    /// One training step on batch `step % stepsPerEpoch` of epoch `step / stepsPerEpoch` of `data`.
    public func step(data: TrainingData, step: Int) throws -> StepMetrics {
        phase(.data) {
            data.copyBatch(epoch: step / data.stepsPerEpoch, index: step % data.stepsPerEpoch, into: real.baseAddress!)
        }
        return try self.step(real: real.baseAddress!, step: step)
    }

    /// One training step on this rank's `real` batch (`batchSize x pixels`, in [-1, 1]).
    /// `step` (0-based, global) keys the noise, so the result does not depend on how the
    /// global batch is split across ranks.
    public func step(real: UnsafePointer<Float>, step: Int) throws -> StepMetrics {
        currentStep = step
        var metrics = StepMetrics()
        // Each forward pass draws its own dropout masks, keyed by (seed, step, pass).
        func training(_ pass: UInt64) -> ForwardContext {
            ForwardContext(training: true,
                           random: RandomStream(seed: configuration.seed, RandomPurpose.dropout.rawValue, UInt64(step), pass),
                           firstExample: communicator.rank * batch)
        }

        fillNoise(.discriminatorNoise, step: step)
        let fake = phase(.forward) { generator.forward(noise.baseAddress!, batch: batch, context: training(0)) }
        // D's gradients are final once its pass on `fake` leaves each layer: their all-reduce starts then.
        discriminatorGradients(real: real, fake: fake, contexts: (training(1), training(2)), metrics: &metrics)

        switch configuration.updateScheme {
        case .alternating:
            try averageAndUpdate(.discriminator)
            // The generator's turn: fresh noise, through the updated discriminator.
            fillNoise(.generatorNoise, step: step)
            let logits = phase(.forward) {
                let fresh = generator.forward(noise.baseAddress!, batch: batch, context: training(3))
                return discriminator.forward(fresh, batch: batch, context: training(4))
            }
            metrics.generatorLoss = generatorGradients(logits: logits)
            try averageAndUpdate(.generator)
        case .simultaneous:
            // D's last forward pass was on `fake`: G's loss backpropagates through it before
            // either network changes, while D's gradients travel.
            metrics.generatorLoss = generatorGradients(logits: discriminator.lastOutput!)
            try averageAndUpdate(.discriminator)
            try averageAndUpdate(.generator)
        }
        return metrics
    }

    /// Averages the network's gradients over the ranks (waiting for what backward started),
    /// then the same Adam update on every rank. Non-finite averaged gradients (the same on every
    /// rank, so every rank stops at the same step) end the step before the update: no
    /// parameter, and so no checkpoint, ever holds them.
    private func averageAndUpdate(_ role: NetworkRole) throws {
        try exchange.finish(role)
        let network = models[role], optimizer = role == .generator ? generatorOptimizer : discriminatorOptimizer
        let gradients = network.parameters.gradients
        guard backend.maxAbs(gradients.baseAddress!, count: gradients.count).isFinite else {
            throw TrainingError.diverged(step: currentStep + 1, network: role)
        }
        phase(.optimizer) {
            optimizer.step(parameters: network.parameters.values.baseAddress!,
                           gradients: network.parameters.gradients.baseAddress!)
        }
    }

    /// Runs `body` as one `phase` of the step, between the observer's begin and end.
    @inline(__always)
    @discardableResult
    private func phase<T>(_ phase: StepPhase, _ body: () throws -> T) rethrows -> T {
        observer?.begin(phase)
        defer { observer?.end(phase) }
        return try body()
    }

    /// Sets D's gradients to ∂L_D/∂θ_D for L_D = mean BCE(D(real), real target) +
    /// mean BCE(D(fake), 0), and records L_D, D(x) and D(G(z)) in `metrics`.
    func discriminatorGradients(real: UnsafePointer<Float>, fake: UnsafePointer<Float>,
                                contexts: (real: ForwardContext, fake: ForwardContext), metrics: inout StepMetrics) {
        phase(.backward) { discriminator.parameters.zeroGradients() }
        metrics.discriminatorLoss = discriminatorPass(real, targets: realTargets, context: contexts.real,
                                                      score: &metrics.realScore)
        metrics.discriminatorLoss += discriminatorPass(fake, targets: fakeTargets, context: contexts.fake,
                                                       score: &metrics.fakeScore,
                                                       listener: exchange.listener(announcing: .discriminator))
    }

    /// D forward and backward on `images`; adds ∂(mean BCE)/∂θ_D into D's gradients.
    /// Returns the mean loss; `score` receives the mean sigmoid of the logits.
    private func discriminatorPass(_ images: UnsafePointer<Float>, targets: UnsafeMutableBufferPointer<Float>,
                                   context: ForwardContext, score: inout Double,
                                   listener: BackwardListener? = nil) -> Double {
        let loss = phase(.forward) {
            let logits = discriminator.forward(images, batch: batch, context: context)
            backend.sigmoid(logits, scores.baseAddress!, count: batch)
            return backend.binaryCrossEntropyWithLogits(logits, targets: targets.baseAddress!, count: batch,
                                                        scale: 1 / Float(batch), gradient: logitGradient.baseAddress!)
        }
        score = backend.sum(scores.baseAddress!, count: batch) / Double(batch)
        phase(.backward) { discriminator.backward(logitGradient.baseAddress!, batch: batch, listener: listener) }
        return loss / Double(batch)
    }

    /// The non-saturating generator loss −log D(G(z)) on the logits of D's last forward pass
    /// (which must be on G's last output); backpropagates through D (D's parameters untouched)
    /// into G's gradients (set, not added). Returns the mean loss.
    func generatorGradients(logits: UnsafePointer<Float>) -> Double {
        let loss = phase(.forward) {
            backend.binaryCrossEntropyWithLogits(logits, targets: generatorTargets.baseAddress!, count: batch,
                                                 scale: 1 / Float(batch), gradient: logitGradient.baseAddress!)
        }
        phase(.backward) {
            generator.parameters.zeroGradients()
            let imageGradient = discriminator.backward(logitGradient.baseAddress!, batch: batch,
                                                       options: .init(parameterGradients: false, inputGradient: true),
                                                       listener: exchange.progressListener())!
            generator.backward(imageGradient, batch: batch, listener: exchange.listener(announcing: .generator))
        }
        return loss / Double(batch)
    }

    /// Fills `noise` for this rank's slice of global step `step`: value j of global example e
    /// is element e·latent + j of the stream (seed, purpose, step).
    private func fillNoise(_ purpose: RandomPurpose, step: Int) {
        let stream = RandomStream(seed: configuration.seed, purpose.rawValue, UInt64(step))
        fillLatent(noise.baseAddress!, count: batch, firstExample: communicator.rank * batch, stream: stream,
                   configuration: configuration, backend: backend)
    }

    /// Generates `count` images (inference mode) from the noise of examples
    /// `firstExample ..< firstExample + count` of `stream` into `output` (`count x pixels`).
    /// `count` may exceed the training batch: it runs in chunks.
    public func generate(count: Int, stream: RandomStream, firstExample: Int = 0,
                         into output: UnsafeMutablePointer<Float>) {
        let pixels = configuration.pixelCount
        var done = 0
        while done < count {
            let n = min(batch, count - done)
            fillLatent(noise.baseAddress!, count: n, firstExample: firstExample + done, stream: stream,
                       configuration: configuration, backend: backend)
            let images = generator.forward(noise.baseAddress!, batch: n, context: ForwardContext(training: false))
            (output + done * pixels).update(from: images, count: n * pixels)
            done += n
        }
    }

    /// The ranks whose parameters (either network) differ from rank 0's, by comparing 64-bit
    /// checksums gathered with one small all-reduce; empty when every replica is identical.
    /// The same answer on every rank. A collective: every rank must call it.
    public func ranksDifferingFromRoot() throws -> [Int] {
        // One slot of 4 per rank (each checksum as two exact 32-bit halves); zeros elsewhere,
        // so the sum gathers every rank's checksums exactly.
        var values = [Double](repeating: 0, count: 4 * communicator.size)
        for (i, store) in [generator.parameters, discriminator.parameters].enumerated() {
            let hash = store.checksum()
            values[4 * communicator.rank + 2 * i] = Double(hash >> 32)
            values[4 * communicator.rank + 2 * i + 1] = Double(hash & 0xFFFF_FFFF)
        }
        try values.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .sum) }
        return (1 ..< communicator.size).filter { values[4 * $0 ..< 4 * $0 + 4] != values[0 ..< 4] }
    }

    /// Whether every rank holds bit-identical parameters (both networks).
    public func parameterChecksumsAgree() throws -> Bool {
        try ranksDifferingFromRoot().isEmpty
    }
}

// MARK: - What a step computes

/// One pass of one network in a training step: forward, or backward computing `backward`'s gradients.
public struct NetworkPass: Sendable {
    public var network: NetworkRole
    /// nil for a forward pass.
    public var backward: BackwardOptions?

    public init(_ network: NetworkRole, backward: BackwardOptions? = nil) {
        self.network = network
        self.backward = backward
    }
}

/// The FLOPs one layer contributes to a training step, summed over the step's passes.
public struct LayerFLOPs: Equatable, Sendable {
    public var forward = 0, backward = 0
    public var total: Int { forward + backward }
}

/// The FLOPs of one training step on one rank, counted analytically layer by layer (see
/// `Layer.forwardFLOPs` for the convention: matrix products only) over the passes the step runs.
public struct StepFLOPs: Equatable, Sendable {
    public var generator: [LayerFLOPs]
    public var discriminator: [LayerFLOPs]

    public subscript(_ role: NetworkRole) -> [LayerFLOPs] {
        get { role == .generator ? generator : discriminator }
        set { if role == .generator { generator = newValue } else { discriminator = newValue } }
    }

    public var forward: Int { (generator + discriminator).reduce(0) { $0 + $1.forward } }
    public var backward: Int { (generator + discriminator).reduce(0) { $0 + $1.backward } }
    public var total: Int { forward + backward }
}

extension GANTrainer {
    /// The network passes `step` runs, in its order, for the configured update scheme. It must
    /// follow `step`: GANTests counts the passes a real step makes against it.
    public var passesPerStep: [NetworkPass] {
        let g = NetworkRole.generator, d = NetworkRole.discriminator
        // D on real images and on G(z), each backpropagated into D's parameters only.
        let discriminatorBackward = NetworkPass(d, backward: BackwardOptions(parameterGradients: true, inputGradient: false))
        var passes = [NetworkPass(g), NetworkPass(d), discriminatorBackward, NetworkPass(d), discriminatorBackward]
        // Alternating: the generator's turn runs G and the updated D again, on fresh noise.
        if configuration.updateScheme == .alternating { passes += [NetworkPass(g), NetworkPass(d)] }
        // G's loss: back through D (its input gradients, not its parameters') into G's parameters.
        passes += [NetworkPass(d, backward: BackwardOptions(parameterGradients: false, inputGradient: true)),
                   NetworkPass(g, backward: BackwardOptions(parameterGradients: true, inputGradient: false))]
        return passes
    }

    /// FLOPs of one step on this rank (its batch): `passesPerStep`, layer by layer.
    public var flopsPerStep: StepFLOPs {
        var flops = StepFLOPs(generator: Array(repeating: LayerFLOPs(), count: models.generator.layers.count),
                              discriminator: Array(repeating: LayerFLOPs(), count: models.discriminator.layers.count))
        let batch = configuration.batchSize
        for pass in passesPerStep {
            let counts = models[pass.network].layerFLOPs(batch: batch, backward: pass.backward)
            for (i, count) in counts.enumerated() {
                if pass.backward == nil { flops[pass.network][i].forward += count } else { flops[pass.network][i].backward += count }
            }
        }
        return flops
    }
}

/// Sums over the ranks for synchronized batch norm. A failed collective cannot be returned
/// from inside a forward pass without leaving the other ranks waiting, so it ends the job.
final class CommunicatorReducer: ReplicaReducer {
    let communicator: Communicator
    init(_ communicator: Communicator) { self.communicator = communicator }

    func sumOverReplicas(_ values: UnsafeMutableBufferPointer<Double>) {
        do {
            try communicator.allReduce(values, .sum)
        } catch {
            communicator.abort(message: "gantry: synchronized batch norm: \(error)")
        }
    }
}

/// Draws `count` latent vectors for global examples `firstExample...` from `stream`. Each
/// value is a function of its position alone, so the backend's threads draw disjoint ranges.
func fillLatent(_ out: UnsafeMutablePointer<Float>, count: Int, firstExample: Int, stream: RandomStream,
                configuration: GANConfiguration, backend: Backend) {
    let latent = configuration.latentDimension, first = UInt64(firstExample * latent)
    switch configuration.noise {
    case .normal:
        backend.fillNormal(out, count: count * latent, stream: stream, first: first)
    case .uniform:
        backend.parallelFor(count * latent, granularity: 16, cost: 2, UniformFill(out: out, first: first, stream: stream))
    }
}

/// Uniform latent values in [-1, 1) for positions `first + i` of `stream` into `out[i]`, for the
/// `i` in a range.
struct UniformFill: RangeWork {
    let out: UnsafeMutablePointer<Float>
    let first: UInt64
    let stream: RandomStream

    func callAsFunction(_ range: Range<Int>) {
        stream.fillUniform(out + range.lowerBound, count: range.count, low: -1, high: 1,
                           first: first + UInt64(range.lowerBound))
    }
}
