import Backends
import Distributed
import Kernels
import NN
import Optim

/// Losses and discriminator outputs of one step on this rank (means over the local batch, and
/// over the critic's updates when it makes several).
public struct StepMetrics: Sendable {
    public var discriminatorLoss: Double = 0
    public var generatorLoss: Double = 0
    /// The loss's score of D's outputs (`AdversarialLoss.score`) on real and on generated
    /// images: D(x) and D(G(z)) for binary cross-entropy, mean critic values for WGAN.
    public var realScore: Double = 0
    public var fakeScore: Double = 0
    /// WGAN-GP's gradient penalty (λ included), part of `discriminatorLoss`; 0 otherwise.
    public var penalty: Double = 0

    public init() {}

    /// The critic's estimate of the Wasserstein distance, mean D(x) − mean D(G(z)) (WGAN losses).
    public var wassersteinEstimate: Double { realScore - fakeScore }
}

/// One data-parallel replica of a GAN: both networks, both optimizers, and the training step.
///
/// Every rank holds identical parameters. A step computes gradients on the local batch, averages
/// each network's gradients across ranks with one all-reduce of its flat gradient buffer, and
/// applies the same update everywhere, so the parameters stay bit-identical (which
/// `parameterChecksumsAgree()` verifies).
public final class GANTrainer {
    public let configuration: GANConfiguration
    public let models: GANModels
    public let generatorOptimizer: Optimizer
    public let discriminatorOptimizer: Optimizer
    /// The generator holding the moving average of the trained one's parameters and state
    /// (`GANConfiguration.generatorAverageDecay`; nil without one): what `generate` draws from.
    public let averagedGenerator: Sequential?
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
    /// Real batches one step takes: one per critic update.
    public var batchesPerStep: Int { configuration.criticSteps }
    private let exchange: GradientExchange
    private let backend: Backend
    private let loss: AdversarialLoss
    private let penalty: GradientPenalty?

    private var generator: Sequential { models.generator }
    private var discriminator: Sequential { models.discriminator }
    private let batch: Int
    // Per-step buffers, allocated once: noise (batch x latent) and ∂loss/∂(D's output) (batch).
    private let noise: UnsafeMutableBufferPointer<Float>
    private let outputGradient: UnsafeMutableBufferPointer<Float>
    /// The global step `step` is running (for errors).
    private var currentStep = 0
    /// The alternating scheme's generator turn on the same z as the last critic update (`.same`)
    /// reuses G's forward pass of that update, output and activations: G has not changed since,
    /// and without dropout its output on that z is the same, one pass fewer per step. (Batch
    /// norm's running statistics then move once per step, not twice; training-mode passes do not
    /// read them.) Tests turn it off to compare.
    var reusesGeneratorForward: Bool
    /// This rank's real batches of a step, for `step(data:step:)`.
    private let real: UnsafeMutableBufferPointer<Float>

    /// Builds the models; parameters are set by `initializeParameters()` or a checkpoint.
    public init(configuration: GANConfiguration, communicator: Communicator, backend: Backend = Backends.automatic(),
                exchange: ExchangeOptions = ExchangeOptions()) {
        self.configuration = configuration
        self.communicator = communicator
        self.backend = backend
        batch = configuration.batchSize
        models = GANModels(configuration: configuration, maxBatch: batch, backend: backend)
        generatorOptimizer = makeOptimizer(count: models.generator.parameters.count,
                                           config: configuration.generatorOptimizer, backend: backend)
        discriminatorOptimizer = makeOptimizer(count: models.discriminator.parameters.count,
                                               config: configuration.discriminatorOptimizer, backend: backend)
        averagedGenerator = configuration.averagesGenerator
            ? GANModels.generator(configuration, maxBatch: batch, backend: backend) : nil
        self.exchange = GradientExchange(communicator: communicator, options: exchange, models: models, backend: backend)
        loss = makeLoss(configuration, maxBatch: batch, backend: backend)
        penalty = configuration.loss == .wganGP
            ? GradientPenalty(weight: configuration.penaltyWeight, pixels: configuration.pixelCount, maxBatch: batch,
                              backend: backend)
            : nil
        func buffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            b.initialize(repeating: 0)
            return b
        }
        reusesGeneratorForward = configuration.updateScheme == .alternating && configuration.generatorNoise == .same
            && !models.generator.layers.contains { $0 is Dropout }
        noise = buffer(batch * configuration.latentDimension)
        outputGradient = buffer(batch)
        real = buffer(configuration.criticSteps * batch * configuration.pixelCount)
        if configuration.synchronizedBatchNorm {
            let reducer = CommunicatorReducer(communicator)
            for layer in models.batchNormalizations { layer.reducer = reducer }
        }
    }

    deinit {
        for b in [noise, outputGradient, real] { b.deallocate() }
    }

    /// Rank 0 initializes both networks from the seed and broadcasts them, so every replica
    /// starts from rank 0's parameters whatever happens on the others.
    public func initializeParameters() throws {
        if communicator.rank == 0 {
            models.initialize(seed: configuration.seed)
            // The average starts at the initial generator.
            if let averagedGenerator {
                for (average, live) in zip(averagedGenerator.stores, generator.stores) {
                    _ = average.values.update(fromContentsOf: live.values)
                }
            }
        }
        try synchronizeParameters()
    }

    /// Copies rank 0's parameters and state (batch norm's running statistics) to every rank,
    /// after initialization or loading a checkpoint.
    public func synchronizeParameters() throws {
        for network in [generator, discriminator] + (averagedGenerator.map { [$0] } ?? []) {
            try communicator.broadcast(network.parameters.values, root: 0)
            if network.state.count > 0 { try communicator.broadcast(network.state.values, root: 0) }
        }
    }

    /// One training step on `batchesPerStep` batches of `data`: batch i = step·batchesPerStep + k
    /// is batch `i % batchesPerEpoch` of epoch `i / batchesPerEpoch`.
    public func step(data: TrainingData, step: Int) throws -> StepMetrics {
        let images = batch * configuration.pixelCount
        phase(.data) {
            for k in 0 ..< batchesPerStep {
                let i = step * batchesPerStep + k
                data.copyBatch(epoch: i / data.batchesPerEpoch, index: i % data.batchesPerEpoch,
                               into: real.baseAddress! + k * images)
            }
        }
        return try self.step(real: real.baseAddress!, step: step)
    }

    /// One training step on this rank's `real` batches (`batchesPerStep` of `batchSize x
    /// pixels`, in [-1, 1]): the critic's updates, one per batch, then the generator's.
    /// `step` (0-based, global) keys the noise, the dropout masks and WGAN-GP's mixing, so the
    /// result does not depend on how the global batch is split across ranks.
    public func step(real: UnsafePointer<Float>, step: Int) throws -> StepMetrics {
        currentStep = step
        var metrics = StepMetrics()
        let images = batch * configuration.pixelCount, turns = configuration.criticSteps
        for k in 0 ..< turns {
            // Critic update `turn` (global): its noise, masks and mixing weights.
            let turn = step * turns + k
            fillNoise(.discriminatorNoise, index: turn)
            let fake = phase(.forward) { generator.forward(noise.baseAddress!, batch: batch, context: training(turn, 0)) }
            if configuration.updateScheme == .simultaneous {
                // One G pass feeds both losses: D's last pass is on `fake`, and G's loss
                // backpropagates through it before either network changes, while D's gradients travel.
                discriminatorGradients(real: real, fake: fake, turn: turn, metrics: &metrics)
                metrics.generatorLoss = generatorGradients(outputs: discriminator.lastOutput!)
                try averageAndUpdate(.discriminator)
                try averageAndUpdate(.generator)
                return metrics
            }
            switch configuration.discriminatorUpdate {
            case .joint:
                discriminatorGradients(real: real + k * images, fake: fake, turn: turn, metrics: &metrics)
                try averageAndUpdate(.discriminator)
            case .split:
                // Two updates, as two Keras train_on_batch calls: real images, then generated.
                for input in [DiscriminatorInput.real, .fake] {
                    phase(.backward) { discriminator.parameters.zeroGradients() }
                    metrics.discriminatorLoss += discriminatorPass(input == .real ? real + k * images : fake, input,
                                                                   context: training(turn, input == .real ? 1 : 2),
                                                                   metrics: &metrics, announcing: true)
                    try averageAndUpdate(.discriminator)
                }
            }
        }
        metrics.discriminatorLoss /= Double(turns)
        metrics.realScore /= Double(turns)
        metrics.fakeScore /= Double(turns)
        metrics.penalty /= Double(turns)
        // The generator's turn: through the updated discriminator, on fresh noise or on the
        // last critic update's. On that z, G (not updated since) computed its images already.
        if !reusesGeneratorForward {
            switch configuration.generatorNoise {
            case .fresh: fillNoise(.generatorNoise, index: step)
            case .same: fillNoise(.discriminatorNoise, index: step * turns + turns - 1)
            }
        }
        let outputs = phase(.forward) {
            let generated = reusesGeneratorForward
                ? generator.lastOutput! : generator.forward(noise.baseAddress!, batch: batch, context: training(step, 3))
            return discriminator.forward(generated, batch: batch, context: training(step, 4))
        }
        metrics.generatorLoss = generatorGradients(outputs: outputs)
        try averageAndUpdate(.generator)
        return metrics
    }

    /// The context of forward pass `pass` of critic update (or step) `turn`: each draws its own
    /// dropout masks, keyed by (seed, turn, pass), per global example.
    func training(_ turn: Int, _ pass: UInt64) -> ForwardContext {
        ForwardContext(training: true,
                       random: RandomStream(seed: configuration.seed, RandomPurpose.dropout.rawValue, UInt64(turn), pass),
                       firstExample: communicator.rank * batch)
    }

    /// Averages the network's gradients over the ranks (waiting for what backward started),
    /// then the same update on every rank. Non-finite averaged gradients (the same on every
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
            if role == .discriminator { loss.discriminatorUpdated(network) }
            if role == .generator, let averagedGenerator { updateAverage(averagedGenerator) }
        }
    }

    /// Moves the averaged generator's parameters and state toward the generator's, after the
    /// generator's update number `generatorOptimizer.stepCount`.
    private func updateAverage(_ averaged: Sequential) {
        let average = MovingAverage(decay: configuration.generatorAverageDecay)
        for (target, live) in zip(averaged.stores, generator.stores) where live.count > 0 {
            average.update(target.values.baseAddress!, toward: live.values.baseAddress!, count: live.count,
                           update: generatorOptimizer.stepCount, backend: backend)
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

    /// Sets D's gradients to those of its loss on a real and a generated batch (and, for
    /// WGAN-GP, the penalty on their mixes), adding the loss and scores to `metrics`. D's last
    /// forward pass is on `fake`, whose backward makes D's gradients final.
    func discriminatorGradients(real: UnsafePointer<Float>, fake: UnsafePointer<Float>, turn: Int,
                                metrics: inout StepMetrics) {
        phase(.backward) { discriminator.parameters.zeroGradients() }
        metrics.discriminatorLoss += discriminatorPass(real, .real, context: training(turn, 1), metrics: &metrics)
        if let penalty {
            let value = phase(.backward) {
                penalty.addGradients(critic: discriminator, real: real, fake: fake, batch: batch,
                                     mixing: RandomStream(seed: configuration.seed, RandomPurpose.penaltyMix.rawValue,
                                                          UInt64(turn)),
                                     firstExample: communicator.rank * batch, context: training(turn, 5))
            }
            metrics.penalty += value
            metrics.discriminatorLoss += value
        }
        metrics.discriminatorLoss += discriminatorPass(fake, .fake, context: training(turn, 2), metrics: &metrics,
                                                       announcing: true)
    }

    /// D forward and backward on `images`; adds the gradient of the loss's term into D's
    /// gradients and the score to `metrics`, and returns the term. `announcing`: this backward
    /// makes D's gradients final, and their all-reduce starts as it goes.
    private func discriminatorPass(_ images: UnsafePointer<Float>, _ input: DiscriminatorInput, context: ForwardContext,
                                   metrics: inout StepMetrics, announcing: Bool = false) -> Double {
        let outputs = phase(.forward) { discriminator.forward(images, batch: batch, context: context) }
        let term = loss.discriminator(outputs, on: input, count: batch, gradient: outputGradient.baseAddress!)
        let score = loss.score(outputs, count: batch)
        if input == .real { metrics.realScore += score } else { metrics.fakeScore += score }
        phase(.backward) {
            discriminator.backward(outputGradient.baseAddress!, batch: batch,
                                   listener: announcing ? exchange.listener(announcing: .discriminator) : nil)
        }
        return term
    }

    /// G's loss on D's `outputs` of its last forward pass (which must be on G's last output);
    /// backpropagates through D (D's parameters untouched) into G's gradients (set, not
    /// added). Returns the loss.
    func generatorGradients(outputs: UnsafePointer<Float>) -> Double {
        let value = phase(.forward) { loss.generator(outputs, count: batch, gradient: outputGradient.baseAddress!) }
        phase(.backward) {
            generator.parameters.zeroGradients()
            let imageGradient = discriminator.backward(outputGradient.baseAddress!, batch: batch,
                                                       options: .init(parameterGradients: false, inputGradient: true),
                                                       listener: exchange.progressListener())!
            generator.backward(imageGradient, batch: batch, listener: exchange.listener(announcing: .generator))
        }
        return value
    }

    /// Fills `noise` for this rank's slice of draw `index` (a step, or a critic update): value
    /// j of global example e is element e·latent + j of the stream (seed, purpose, index).
    private func fillNoise(_ purpose: RandomPurpose, index: Int) {
        let stream = RandomStream(seed: configuration.seed, purpose.rawValue, UInt64(index))
        fillLatent(noise.baseAddress!, count: batch, firstExample: communicator.rank * batch, stream: stream,
                   configuration: configuration, backend: backend)
    }

    /// Generates `count` images (inference mode) from the noise of examples
    /// `firstExample ..< firstExample + count` of `stream` into `output` (`count x pixels`),
    /// with the averaged generator when there is one. `count` may exceed the training batch: it
    /// runs in chunks.
    public func generate(count: Int, stream: RandomStream, firstExample: Int = 0,
                         into output: UnsafeMutablePointer<Float>) {
        generateImages(averagedGenerator ?? generator, noise: noise, configuration: configuration, count: count, stream: stream,
                       firstExample: firstExample, into: output, backend: backend)
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
    /// nil for a forward pass (or a double backward).
    public var backward: BackwardOptions?
    /// The second half of double backpropagation (WGAN-GP's penalty).
    public var doubleBackward = false

    public init(_ network: NetworkRole, backward: BackwardOptions? = nil) {
        self.network = network
        self.backward = backward
    }

    /// WGAN-GP's second-order pass through `network`.
    public static func doubleBackward(_ network: NetworkRole) -> NetworkPass {
        var pass = NetworkPass(network)
        pass.doubleBackward = true
        return pass
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
        var critic = [NetworkPass(g), NetworkPass(d), discriminatorBackward]
        // WGAN-GP: D on the mixes, its input gradient, and the pass back through that backward.
        if configuration.loss == .wganGP {
            critic += [NetworkPass(d), NetworkPass(d, backward: BackwardOptions(parameterGradients: false, inputGradient: true)),
                       .doubleBackward(d)]
        }
        critic += [NetworkPass(d), discriminatorBackward]
        var passes = Array([[NetworkPass]](repeating: critic, count: configuration.criticSteps).joined())
        // Alternating: the generator's turn runs the updated D again, on G's images of fresh noise
        // (G runs again) or of the same z (G's last pass serves).
        if configuration.updateScheme == .alternating {
            passes += (reusesGeneratorForward ? [] : [NetworkPass(g)]) + [NetworkPass(d)]
        }
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
            let network = models[pass.network]
            let counts = pass.doubleBackward ? network.layers.map { $0.flops(batch: batch, .doubleBackward) }
                : network.layerFLOPs(batch: batch, backward: pass.backward)
            for (i, count) in counts.enumerated() {
                if pass.backward == nil && !pass.doubleBackward {
                    flops[pass.network][i].forward += count
                } else {
                    flops[pass.network][i].backward += count
                }
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
