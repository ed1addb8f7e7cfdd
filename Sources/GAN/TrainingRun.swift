import Backends
import Distributed
import FileFormats
import Kernels
import Foundation

/// This rank's training examples, served in an order fixed by (seed, epoch, rank).
public protocol TrainingData: AnyObject {
    /// Batches per epoch, identical on every rank (the smallest shard decides).
    var batchesPerEpoch: Int { get }
    /// Copies batch `index` of `epoch` (`batchSize x pixels`, values in [-1, 1]) into `destination`.
    func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>)
}

/// How long to train: a number of global steps, or of epochs over the training set.
public enum TrainingLength: Sendable, Equatable {
    case steps(Int)
    case epochs(Int)
}

/// Where a resumed run looks for its checkpoint (see `ResumePlan`).
public enum ResumeSource: Sendable, Equatable {
    /// The checkpoint with the highest step in `OUT/checkpoints`.
    case latest
    case file(String)
}

/// The run's schedule and outputs (everything but the arithmetic, which is `GANConfiguration`).
public struct TrainingOptions: Sendable {
    public var outputDirectory: String
    public var length: TrainingLength = .steps(1000)
    /// Steps between progress lines and metrics records.
    public var logEvery = 100
    /// Steps between sample grids (`OUT/samples/step-N.png`); 0 disables all but the last.
    public var sampleEvery = 1000
    /// Steps between checkpoints (`OUT/checkpoints/step-N.safetensors`); 0: the last only.
    public var checkpointEvery = 5000
    /// Checkpoints kept: after each write, all but the newest `keep` are deleted.
    public var keep = 5
    /// Steps between cross-rank parameter checksums.
    public var checkEvery = 100
    /// The checkpoint to resume from (`ResumePlan.make`), nil for a new run. Its configuration
    /// is the one the run must be built with.
    public var resume: ResumePlan?
    /// Images in a sample grid (a square number makes a square grid).
    public var sampleCount = 100
    /// Split every step, per rank, into compute, waiting for the slowest rank and the
    /// all-reduce (one timed barrier per network per step), reported at each log interval.
    public var profile = false
    /// How gradients travel between the ranks.
    public var exchange = ExchangeOptions()
    /// A step whose loss (either network's, this rank's batch) is above this or not finite
    /// ends the run: the logits have run off (with binary cross-entropy, a loss of L means a
    /// logit near -L), and nothing useful is learned from there.
    public var maxLoss = 1e6
    /// Wall-clock seconds after which the run ends, as if its last step were the one running
    /// then (rank 0's clock decides, the ranks agree on the step): final samples and checkpoint.
    public var maxSeconds: Double?
    /// Steps between evaluations of the generator's images (`--eval-every`; 0: none). The
    /// run's `SampleEvaluator` judges them on rank 0; the figures go to every output.
    public var evaluateEvery = 0
    /// Rank 0 writes TensorBoard's event file to `OUT/tensorboard` (`TensorBoardOutput`).
    public var tensorboard = true
    /// Histograms of every parameter tensor and its gradient every this many steps (0: never).
    public var histogramEvery = 0

    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }

    public var checkpointDirectory: String { outputDirectory + "/checkpoints" }
    public var sampleDirectory: String { outputDirectory + "/samples" }
}

/// A failure of the training itself (not of its inputs).
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case replicasDiverged(step: Int, ranks: [Int])
    /// A collective of step `step` could not complete (a rank stalled, or stopped after a signal).
    case communication(step: Int, CommunicationError)
    case diverged(step: Int, network: NetworkRole)
    case alreadyFinished(step: Int, totalSteps: Int)
    /// A step's loss was not finite or above `limit` (`--max-loss`).
    case lossDiverged(step: Int, network: NetworkRole, loss: Double, limit: Double)
    case imageSizeMismatch(path: String, rows: Int, columns: Int, expectedRows: Int, expectedColumns: Int)

    public var description: String {
        switch self {
        case let .replicasDiverged(step, ranks):
            return "rank\(ranks.count == 1 ? "" : "s") \(ranks.map(String.init).joined(separator: ", ")) "
                + "hold\(ranks.count == 1 ? "s" : "") parameters different from rank 0's after step \(step): the replicas diverged "
                + "(a rank computed something else: check that every host runs the same gantry build on the same kind of CPU); "
                + "the run stops, its last checkpoint is intact"
        case let .lossDiverged(step, network, loss, limit):
            return "the \(network.rawValue)'s loss is \(String(format: "%.3g", loss)) in step \(step)"
                + (loss.isFinite ? ", above --max-loss \(String(format: "%g", limit))" : "") + ": training diverged; the run stops before "
                + "checkpointing this step, its checkpoints are intact; lower --lr, or resume from an earlier checkpoint"
        case let .communication(step, error):
            return "step \(step): \(error)"
        case let .diverged(step, network):
            return "the \(network.rawValue)'s gradients are not finite (NaN or infinity) in step \(step): training diverged; "
                + "the run stops before updating, its checkpoints are intact; lower --lr, or resume from an earlier checkpoint"
        case let .imageSizeMismatch(path, rows, columns, expectedRows, expectedColumns):
            return "\(path) holds \(rows)x\(columns) images, but the model is built for \(expectedRows)x\(expectedColumns): "
                + "pass a --data folder of \(expectedRows)x\(expectedColumns) images (MNIST, Fashion-MNIST)"
        case let .alreadyFinished(step, totalSteps):
            return "the checkpoint is at step \(step), already at or past the requested \(totalSteps) steps: "
                + "ask for more --steps or --epochs to continue training"
        }
    }
}

/// How a run ended.
public enum RunOutcome: Sendable, Equatable {
    /// Every step to the end was trained (this many in this invocation).
    case finished(steps: Int)
    /// A stop signal ended it after a step; rank 0 wrote a checkpoint there.
    case stopped(RunStop)
}

/// Runs training on every rank: resume or initialize, the step loop, checkpoints and sample
/// grids (rank 0), and the events every output hears (`TrainingOutput`).
///
/// A stop signal (`StopSignal`, or `stopRequest`) ends the run after a step: each step the
/// ranks all-reduce whether one has seen a signal (started with the step, so that it travels
/// under the step's compute), so every rank stops after the same step, and rank 0 writes a
/// checkpoint there.
public final class TrainingRun {
    public let trainer: GANTrainer
    public let options: TrainingOptions
    let data: TrainingData
    let communicator: Communicator
    let outputs: [TrainingOutput]
    /// Judges the generator's images every `options.evaluateEvery` steps (rank 0; nil: never).
    let evaluator: SampleEvaluator?
    let threads: Int
    /// The signal this rank was asked to stop by, if any (default: `StopSignal.received`).
    let stopRequest: () -> Int32?
    /// The per-step vote on stopping: the largest signal number any rank has seen.
    private let stopVote = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)

    /// Builds the trainer; rank 0 creates the output folders and adds `train.log`,
    /// `metrics.jsonl`, and `progress.gif` with `samples.png` (`SampleAnimation`) to `outputs`.
    /// Nothing is trained yet. `backend`: the kernels (the CLI chooses them from `--isa` and
    /// `--threads`). `outputs`: where else events go (a terminal, a timeline), on the ranks
    /// that keep them.
    public init(configuration: GANConfiguration, options: TrainingOptions, data: TrainingData,
                communicator: Communicator, backend: Backend = Backends.automatic(),
                outputs: [TrainingOutput] = [], evaluator: SampleEvaluator? = nil,
                stopRequest: @escaping () -> Int32? = { StopSignal.received }) throws {
        self.evaluator = evaluator
        try configuration.validate()
        self.options = options
        self.stopRequest = stopRequest
        self.data = data
        self.communicator = communicator
        threads = backend.threads
        var exchange = options.exchange
        exchange.timeWaits = exchange.timeWaits || options.profile
        trainer = GANTrainer(configuration: configuration, communicator: communicator, backend: backend, exchange: exchange)
        if configuration.loss == .wganGP, let layer = trainer.models.discriminator.firstLayerWithoutDoubleBackward {
            throw ConfigurationError.conflicting(
                "--loss wgan-gp differentiates the critic's input gradient, which \(type(of: layer)) in --model "
                    + "\(configuration.model.rawValue)'s discriminator does not support",
                fix: "pass --loss wgan, or a --model whose discriminator has no batch normalization")
        }
        if communicator.rank == 0 {
            for folder in [options.outputDirectory, options.checkpointDirectory, options.sampleDirectory] {
                try createDirectory(folder)
            }
            self.outputs = outputs + [try LogFile(directory: options.outputDirectory),
                                      try MetricsFile(directory: options.outputDirectory),
                                      SampleAnimation(outputDirectory: options.outputDirectory, sampleDirectory: options.sampleDirectory,
                                                      imageHeight: configuration.imageHeight, imageWidth: configuration.imageWidth)]
                + (options.tensorboard ? [TensorBoardOutput(directory: options.outputDirectory + "/tensorboard")] : [])
        } else {
            self.outputs = outputs
        }
    }

    deinit { stopVote.deallocate() }

    public var totalSteps: Int {
        switch options.length {
        case let .steps(n): return n
        case let .epochs(n): return n * stepsPerEpoch
        }
    }

    /// Steps per epoch: a step takes one batch per critic update.
    public var stepsPerEpoch: Int { max(1, data.batchesPerEpoch / trainer.batchesPerStep) }

    private func record(_ event: TrainingEvent) throws {
        for output in outputs { try output.record(event) }
    }

    /// Copies of both networks' parameter tensors and gradients, named as in checkpoints.
    func parameterSnapshot(step: Int) -> ParameterSnapshot {
        ParameterSnapshot(step: step, tensors: NetworkRole.allCases.flatMap { role in
            let store = trainer.models[role].parameters
            return store.entries.map { entry in
                let range = entry.offset ..< entry.offset + entry.count
                return ParameterSnapshot.Tensor(name: "\(role.rawValue).\(entry.name)", values: Array(store.values[range]),
                                                gradients: Array(store.gradients[range]))
            }
        })
    }

    /// Trains to `totalSteps`, or until a stop signal.
    @discardableResult
    public func run() throws -> RunOutcome {
        let c = trainer.configuration
        let firstStep = try start()
        let total = totalSteps
        guard firstStep < total else { throw TrainingError.alreadyFinished(step: firstStep, totalSteps: total) }
        let hosts = try communicator.gather(Array(communicator.processorName.utf8), root: 0).map { String(decoding: $0, as: UTF8.self) }
        try record(.started(RunDescription(
            configuration: c, ranks: communicator.size, threads: threads, stepsPerEpoch: stepsPerEpoch,
            firstStep: firstStep, totalSteps: total, generatorParameters: trainer.models.generator.parameters.count,
            discriminatorParameters: trainer.models.discriminator.parameters.count, exchange: trainer.exchangeOptions,
            outputDirectory: options.outputDirectory,
            layers: Dictionary(uniqueKeysWithValues: NetworkRole.allCases.map { ($0, trainer.models[$0].layers.map(Benchmark.describe)) }),
            hosts: hosts)))
        let phases = options.profile ? PhaseTimer() : nil
        trainer.observer = StepObservers.combine([phases].compactMap { $0 } + outputs.compactMap(\.stepObserver))
        defer { trainer.observer = nil }

        let startTime = monotonicSeconds()
        var intervalStart = startTime, intervalSteps = 0
        // Sums over the interval: D loss, G loss, D(x), D(G(z)) (or the critic's means), the penalty.
        var sums = [Double](repeating: 0, count: 5)

        var lastStep = total
        for step in firstStep ..< total {
            let done = step + 1
            var last = done == total
            let stop = try communicating(inStep: done) { () throws -> Int32? in
                // The vote: a stop signal's number, else `timeUp` when rank 0's clock has passed
                // --max-seconds, else 0; the largest wins.
                let timeUp = communicator.rank == 0 && options.maxSeconds.map { monotonicSeconds() - startTime >= $0 } == true
                stopVote[0] = stopRequest().map(Float.init) ?? (timeUp ? TrainingRun.timeUp : 0)
                let vote = try communicator.startAllReduce(stopVote, .max)
                let m = try trainer.step(data: data, step: step)
                for (network, loss) in [(NetworkRole.discriminator, m.discriminatorLoss), (.generator, m.generatorLoss)]
                where !(abs(loss) <= options.maxLoss) {
                    throw TrainingError.lossDiverged(step: done, network: network, loss: loss, limit: options.maxLoss)
                }
                try vote.wait()
                if stopVote[0] == TrainingRun.timeUp { last = true }
                sums[0] += m.discriminatorLoss; sums[1] += m.generatorLoss
                sums[2] += m.realScore; sums[3] += m.fakeScore; sums[4] += m.penalty
                intervalSteps += 1

                if done % options.logEvery == 0 || last {
                    try sums.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .mean) }
                    let now = monotonicSeconds(), seconds = now - intervalStart
                    let profile = try phases.map { timer in
                        defer { timer.reset() }
                        return try StepProfile.gather(timer.seconds, elapsed: seconds, steps: intervalSteps, communicator: communicator)
                    }
                    try record(.interval(IntervalSummary(
                        step: done, totalSteps: total, epoch: step * trainer.batchesPerStep / data.batchesPerEpoch, loss: c.loss,
                        discriminatorLoss: sums[0] / Double(intervalSteps), generatorLoss: sums[1] / Double(intervalSteps),
                        realScore: sums[2] / Double(intervalSteps), fakeScore: sums[3] / Double(intervalSteps),
                        penalty: sums[4] / Double(intervalSteps),
                        imagesPerSecond: Double(intervalSteps * c.batchSize * trainer.batchesPerStep * communicator.size) / seconds,
                        seconds: now - startTime,
                        // The steps left at this interval's rate, or --max-seconds' time left if sooner.
                        secondsRemaining: min(Double(total - done) * seconds / Double(intervalSteps),
                                              options.maxSeconds.map { max(0, $0 - (now - startTime)) } ?? .infinity),
                        profile: profile)))
                    sums = [Double](repeating: 0, count: sums.count); intervalSteps = 0; intervalStart = monotonicSeconds()
                }
                if done % options.checkEvery == 0 || last {
                    let differing = try trainer.ranksDifferingFromRoot()
                    guard differing.isEmpty else { throw TrainingError.replicasDiverged(step: done, ranks: differing) }
                }
                return stopVote[0] >= 1 ? Int32(stopVote[0]) : nil
            }
            let checkpoint = (options.checkpointEvery > 0 && done % options.checkpointEvery == 0) || last || stop != nil
            let checkpointPath = options.checkpointDirectory + "/" + Checkpoint.fileName(step: done)
            if let stop {
                // Every rank hears it here, together (an output may gather), before rank 0 writes.
                let end = RunStop(signal: stop, step: done, checkpoint: checkpointPath, outputDirectory: options.outputDirectory)
                try record(.stopped(end))
            }
            if communicator.rank == 0 {
                if stop == nil, let evaluator, options.evaluateEvery > 0, done % options.evaluateEvery == 0 || last {
                    trainer.observer?.begin(.samples)
                    let figures = try evaluate(with: evaluator)
                    trainer.observer?.end(.samples)
                    try record(.evaluated(EvaluationRecord(step: done, figures: figures)))
                }
                if stop == nil, options.histogramEvery > 0, done % options.histogramEvery == 0 || last {
                    try record(.parameters(parameterSnapshot(step: done)))
                }
                if stop == nil, (options.sampleEvery > 0 && done % options.sampleEvery == 0) || last {
                    trainer.observer?.begin(.samples)
                    let path = try writeSamples(step: done)
                    trainer.observer?.end(.samples)
                    try record(.saved(SavedFile(kind: .samples, path: path, step: done, last: last)))
                }
                if checkpoint {
                    trainer.observer?.begin(.checkpoint)
                    try Checkpoint.save(trainer, step: done, to: checkpointPath)
                    try Checkpoint.prune(options.checkpointDirectory, keep: options.keep)
                    trainer.observer?.end(.checkpoint)
                    try record(.saved(SavedFile(kind: .checkpoint, path: checkpointPath, step: done, last: last || stop != nil)))
                }
            }
            if let stop {
                return .stopped(RunStop(signal: stop, step: done, checkpoint: checkpointPath, outputDirectory: options.outputDirectory))
            }
            if last {
                lastStep = done
                break
            }
        }
        try record(.finished(RunEnd(steps: lastStep - firstStep, seconds: monotonicSeconds() - startTime,
                                    outputDirectory: options.outputDirectory)))
        return .finished(steps: lastStep - firstStep)
    }

    /// The stop vote's value for "--max-seconds has passed": below every signal's number.
    static let timeUp: Float = 0.5

    /// Runs `body`, the collectives of step `step` among them, naming the step in a failure to communicate.
    private func communicating<T>(inStep step: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as CommunicationError {
            throw TrainingError.communication(step: step, error)
        }
    }

    /// Initializes (rank 0's parameters broadcast) or resumes (rank 0 reads the checkpoint,
    /// every rank receives its state); returns the first step to run.
    func start() throws -> Int {
        var step: Int64 = 0
        if let plan = options.resume {
            if communicator.rank == 0 {
                step = Int64(try Checkpoint.restore(trainer, from: plan.path))
                try record(.resumed(path: plan.path, step: Int(step), skipped: plan.skipped, notes: plan.notes))
            }
            try withUnsafeMutableBytes(of: &step) { try communicator.broadcast($0, root: 0) }
            try trainer.synchronizeParameters()
            try trainer.synchronizeOptimizers()
        } else {
            try trainer.initializeParameters()
        }
        return Int(step)
    }

    /// `evaluator`'s figures for its number of images from the generator, on noise fixed for
    /// the run (the same latent points at every evaluation).
    func evaluate(with evaluator: SampleEvaluator) throws -> [EvaluationRecord.Figure] {
        let c = trainer.configuration, count = evaluator.sampleCount
        let images = UnsafeMutableBufferPointer<Float>.allocate(capacity: count * c.pixelCount)
        defer { images.deallocate() }
        trainer.generate(count: count, stream: RandomStream(seed: c.seed, RandomPurpose.evaluationNoise.rawValue),
                         into: images.baseAddress!)
        return try evaluator.evaluate(UnsafeBufferPointer(images))
    }

    /// A grid of the generator's images for a fixed noise batch, so grids of successive
    /// steps show the same latent points. Returns its path.
    func writeSamples(step: Int) throws -> String {
        let c = trainer.configuration
        let count = options.sampleCount
        let images = UnsafeMutableBufferPointer<Float>.allocate(capacity: count * c.pixelCount)
        defer { images.deallocate() }
        trainer.generate(count: count, stream: RandomStream(seed: c.seed, RandomPurpose.sampleNoise.rawValue),
                         into: images.baseAddress!)
        let columns = Int(Double(count).squareRoot().rounded(.up))
        let path = options.sampleDirectory + "/" + Checkpoint.fileName(step: step).replacingOccurrences(of: ".safetensors", with: ".png")
        try PNG.writeGrid(path: path, images: UnsafeBufferPointer(images), count: count,
                          height: c.imageHeight, width: c.imageWidth, columns: columns)
        return path
    }
}
