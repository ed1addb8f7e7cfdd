import Distributed

/// Where a training run's outputs go: the progress on a terminal, the run folder's log and
/// metrics, a timeline, later TensorBoard. The run loop calls `record` at fixed points and
/// knows nothing of what each output does with the events.
///
/// `started`, `interval`, `finished` and `stopped` reach every rank at the same point of the run, so an
/// output may run collectives there (the timeline gathers the ranks' spans); `resumed` and
/// `saved` reach rank 0 only. Outputs that only rank 0 keeps are created on rank 0 only.
public protocol TrainingOutput: AnyObject {
    func record(_ event: TrainingEvent) throws
    /// Hears every step's phases and layers when the output needs them (a timeline); nil
    /// (the default) costs the step nothing.
    var stepObserver: StepObserver? { get }
}

extension TrainingOutput {
    public var stepObserver: StepObserver? { nil }
}

/// What happens in a training run, in the order the run loop reports it.
public enum TrainingEvent: Sendable {
    /// Parameters are initialized or restored; the first step is next.
    case started(RunDescription)
    /// Rank 0 restored a checkpoint (before `started`), passing over `skipped` newer ones;
    /// `notes`: what the resumed run changes (the learning rate, the ranks).
    case resumed(path: String, step: Int, skipped: [SkippedCheckpoint], notes: [ResumeNote])
    /// A log interval ended: means over its steps and over all ranks.
    case interval(IntervalSummary)
    /// Rank 0 wrote a checkpoint or a sample grid.
    case saved(SavedFile)
    /// Rank 0 judged the generator's images (`--eval-every`).
    case evaluated(EvaluationRecord)
    /// The last step is done and its files are written.
    case finished(RunEnd)
    /// A stop signal ends the run after `step`; rank 0 writes the checkpoint next. Every rank
    /// hears it at the same point, as `finished`.
    case stopped(RunStop)
    /// Rank 0's copy of every parameter tensor and its last gradient (`--histogram-every`).
    case parameters(ParameterSnapshot)
}

/// Each parameter tensor of both networks after a step, with the gradient of the network's last
/// update (averaged over the ranks): copies, so an output may keep them.
public struct ParameterSnapshot: Sendable {
    public struct Tensor: Sendable {
        /// As in checkpoints: "generator.0.kernel".
        public var name: String
        public var values: [Float]
        public var gradients: [Float]
    }

    public var step: Int
    public var tensors: [Tensor]
}

/// The run as it starts.
public struct RunDescription: Sendable {
    public var configuration: GANConfiguration
    public var ranks: Int
    public var threads: Int
    public var stepsPerEpoch: Int
    public var firstStep: Int
    public var totalSteps: Int
    public var generatorParameters: Int
    public var discriminatorParameters: Int
    public var exchange: ExchangeOptions
    public var outputDirectory: String
    /// Each network's layers, described (`Benchmark.describe`), in order.
    public var layers: [NetworkRole: [String]]
    /// The host each rank runs on (MPI's processor name), in rank order; on rank 0 only, empty elsewhere.
    public var hosts: [String] = []

    public var globalBatch: Int { configuration.batchSize * ranks }
}

/// Means of the step metrics over one log interval, across all ranks.
public struct IntervalSummary: Sendable {
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    /// What the figures below are of: D(x) and D(G(z)), or critic values.
    public var loss: LossKind
    public var discriminatorLoss: Double
    public var generatorLoss: Double
    public var realScore: Double
    public var fakeScore: Double
    /// WGAN-GP's gradient penalty (0 for the other losses).
    public var penalty: Double
    /// Real images per second over the interval, all ranks together (global batch x steps / time).
    public var imagesPerSecond: Double
    /// Wall-clock seconds since training started (this invocation).
    public var seconds: Double
    /// Estimated seconds to `totalSteps` at the interval's rate.
    public var secondsRemaining: Double
    /// Per rank, the mean seconds per step in each phase over the interval (with `--profile`).
    public var profile: [StepProfile]?
}

/// A checkpoint `--resume` passed over, and why.
public struct SkippedCheckpoint: Sendable, Equatable {
    public var path: String
    public var reason: String
}

/// A file rank 0 wrote.
public struct SavedFile: Sendable {
    public enum Kind: String, Sendable { case checkpoint, samples }
    public var kind: Kind
    public var path: String
    public var step: Int
    /// Written after the run's last step.
    public var last: Bool
}

/// What a `SampleEvaluator` made of the generator's images after `step`: named figures in the
/// evaluator's order ("fid", "score", "coverage").
public struct EvaluationRecord: Sendable, Equatable {
    public var step: Int
    public var figures: [Figure]

    public struct Figure: Sendable, Equatable {
        public var name: String
        public var value: Double

        public init(name: String, value: Double) {
            self.name = name
            self.value = value
        }
    }

    public init(step: Int, figures: [Figure]) {
        self.step = step
        self.figures = figures
    }
}

/// Judges generated images for `--eval-every` (gantry eval's figures); the CLI gives the run
/// one, so that GAN does not depend on how images are judged.
public protocol SampleEvaluator: AnyObject {
    /// Images generated for each evaluation.
    var sampleCount: Int { get }
    /// The figures for `images` (`sampleCount x pixels`, values in [-1, 1]).
    func evaluate(_ images: UnsafeBufferPointer<Float>) throws -> [EvaluationRecord.Figure]
}

/// The run as it ends.
public struct RunEnd: Sendable {
    public var steps: Int
    public var seconds: Double
    public var outputDirectory: String
}

/// A run ended early by a stop signal.
public struct RunStop: Sendable, Equatable {
    /// SIGINT or SIGTERM.
    public var signal: Int32
    /// The steps done, the last one whole on every rank.
    public var step: Int
    /// Where rank 0 writes the checkpoint of that step.
    public var checkpoint: String
    public var outputDirectory: String

    public init(signal: Int32, step: Int, checkpoint: String, outputDirectory: String) {
        self.signal = signal
        self.step = step
        self.checkpoint = checkpoint
        self.outputDirectory = outputDirectory
    }
}

/// One rank's step split into where the time went: mean seconds per step.
public struct StepProfile: Sendable, Equatable {
    public var rank: Int
    /// Wall-clock seconds per step on this rank (outside the run loop's files).
    public var stepSeconds: Double
    public var phases: [StepPhase: Double]

    public init(rank: Int, stepSeconds: Double, phases: [StepPhase: Double]) {
        self.rank = rank
        self.stepSeconds = stepSeconds
        self.phases = phases
    }

    /// Every rank's mean seconds per step, in all and in each phase of `seconds`, from this
    /// rank's sums over `steps` steps that took `elapsed` seconds; phases with no time left
    /// out. A collective.
    static func gather(_ seconds: [StepPhase: Double], elapsed: Double, steps: Int,
                       communicator: Communicator) throws -> [StepProfile] {
        let phases = StepPhase.allCases, size = communicator.size, width = phases.count + 1
        var table = [Double](repeating: 0, count: size * width)
        for (j, phase) in phases.enumerated() { table[communicator.rank * width + j] = seconds[phase, default: 0] }
        // The run loop's files (checkpoints, sample grids) are no part of a step.
        let files = phases.filter { !$0.inStep }.map { seconds[$0, default: 0] }.reduce(0, +)
        table[communicator.rank * width + phases.count] = elapsed - files
        try table.withUnsafeMutableBufferPointer { try communicator.allReduce($0, .sum) }
        return (0..<size).map { rank in
            let row = table[rank * width ..< (rank + 1) * width]
            return StepProfile(rank: rank, stepSeconds: row.last! / Double(steps),
                               phases: Dictionary(uniqueKeysWithValues: zip(phases, row).compactMap { phase, total in
                                   total > 0 ? (phase, total / Double(steps)) : nil
                               }))
        }
    }

    /// Waiting for the slowest rank to reach the exchange.
    public var wait: Double { phases[.wait, default: 0] }
    /// The all-reduce itself, where it is not hidden behind computation.
    public var allReduce: Double { phases[.allReduce, default: 0] }
    /// Everything else: forward, backward, update, loading the batch, drawing the noise.
    public var compute: Double { stepSeconds - wait - allReduce }
}
