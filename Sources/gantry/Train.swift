import ArgumentParser
import Backends
import Datasets
import Distributed
import FileFormats
import Foundation
import GAN
import Kernels
import Optim

extension ModelKind: ExpressibleByArgument {}
extension NoiseDistribution: ExpressibleByArgument {}
extension UpdateScheme: ExpressibleByArgument {}
extension LossKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension DiscriminatorUpdate: ExpressibleByArgument {}
extension GeneratorNoise: ExpressibleByArgument {}

/// `gantry train`: every flag is validated before MPI starts; then each rank loads its shard
/// and the run goes to GAN's `TrainingRun`.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a GAN on MNIST (one process, or every rank of an mpirun job).",
        discussion: """
            --batch-size is per rank: the global batch is batch x ranks (as in PyTorch DDP and Horovod).
            Outputs in --out: train.log, metrics.jsonl, samples/step-N.png, checkpoints/step-N.safetensors,
            progress.gif, samples.png, run.json, tensorboard/.

              gantry train --model mlp --steps 2000 --out runs/first
              launch/train -np 2 --preset fast-dcgan --out runs/fast
              launch/train -np 2 --model dcgan --epochs 10 --eval-every 1000 --histogram-every 500
              launch/train -np 2 --out runs/fast --resume
              launch/train -np 2 --config runs/fast/run.json --out runs/again
            """)

    static let latestCheckpoint = "latest"

    @Option(help: ArgumentHelp("One seed's training procedure: \(Preset.all.map(\.name).joined(separator: ", ")) (see gantry presets); flags beside it replace its settings.", valueName: "NAME"))
    var preset: String?

    @Option(help: "Model: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")) (default: mlp; a resumed run's checkpoint's).")
    var model: ModelKind?

    @Option(help: "Folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (default: $MNIST_DIR, else ./data/mnist).")
    var data: String?

    @Option(help: "Output folder (default: runs/MODEL, mlp unless --model).")
    var out: String?

    @Option(help: "Global steps to train to (default: 20000 for mlp; dcgan trains 50 epochs).")
    var steps: Int?

    @Option(help: "Epochs over the training set to train to (instead of --steps).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Examples per rank per step (default: the model's, 64).")
    var batchSize: Int?

    @Option(help: "Adam learning rate of both networks (default: the model's, 1e-3 for mlp, 1e-4 for dcgan).")
    var lr: Float?

    @Option(name: .customLong("g-lr"), help: "The generator's own learning rate (instead of --lr for it).")
    var generatorLR: Float?

    @Option(name: .customLong("d-lr"), help: "The discriminator's own learning rate (instead of --lr for it; e.g. 4x the generator's, as two time-scale updates).")
    var discriminatorLR: Float?

    @Option(help: "Adam beta1 (default: the model's, 0.9 for mlp as its seed, 0.5 for dcgan as the DCGAN paper; the DCGAN tutorial uses 0.9).")
    var beta1: Float?

    @Option(help: "Adam beta2 (default: 0.999).")
    var beta2: Float?

    @Option(help: "Seed of initialization, noise and data order (default: 0).")
    var seed: UInt64?

    @Option(name: .customLong("label-smoothing"), help: "One-sided label smoothing: real targets become 1 - X (seed 002: 0.1; default: 0).")
    var labelSmoothing: Float?

    @Option(help: "Distribution of z: normal (N(0,1), the default) or uniform (U[-1,1], seed 002).")
    var noise: NoiseDistribution?

    @Option(name: .customLong("update-scheme"), help: "alternating (D step, then G step on fresh noise; mlp's default) or simultaneous (one G pass, both step together; dcgan's default).")
    var updateScheme: UpdateScheme?

    @Option(help: "Dropout rate of the DCGAN discriminator (default: 0.3; 0 with --loss wgan-gp).")
    var dropout: Float?

    @Option(help: "Loss: bce (binary cross-entropy, the default), wgan (Wasserstein, weights clipped) or wgan-gp (Wasserstein with a gradient penalty).")
    var loss: LossKind?

    @Option(help: "Optimizer of both networks: adam (the default) or rmsprop (lr 5e-5 unless --lr, as the WGAN paper).")
    var optimizer: OptimizerKind?

    @Option(name: .customLong("critic-steps"), help: "Discriminator updates per generator update, each on its own real batch (n_critic; default 1, 5 with wgan and wgan-gp).")
    var criticSteps: Int?

    @Option(name: .customLong("d-update"), help: "joint (one D update on the real and generated batches' summed loss, the default) or split (two updates, one per batch, as seed 001's Keras code).")
    var discriminatorUpdate: DiscriminatorUpdate?

    @Option(name: .customLong("g-noise"), help: "The generator's turn draws fresh noise (the default) or reuses the same z as the discriminator's (seed 002).")
    var generatorNoise: GeneratorNoise?

    @Option(help: "--loss wgan: clip the critic's parameters to [-C, C] after each update (default 0.01).")
    var clip: Float?

    @Option(name: .customLong("gp-weight"), help: "--loss wgan-gp: the penalty's weight lambda (default 10).")
    var gpWeight: Float?

    @Option(help: ArgumentHelp("Keep an exponential moving average of the generator's weights with decay B (e.g. 0.999; 0, the default: none); samples, --eval-every and gantry sample/eval draw from it.", valueName: "B"))
    var ema: Float?

    @Option(name: .customLong("eval-every"), help: ArgumentHelp("Every N steps and at the end, measure 10,000 of the generator's images as gantry eval does (FID, score, coverage against the MNIST test set); into metrics.jsonl and train.log.", valueName: "N"))
    var evalEvery: Int?

    @Option(name: .customLong("eval-count"), help: "Images each --eval-every measurement generates.")
    var evalCount: Int = 10_000

    @Option(name: .customLong("max-seconds"), help: ArgumentHelp("Stop after S seconds of training (the ranks agree on the step), with final samples and checkpoint.", valueName: "S"))
    var maxSeconds: Double?

    @Flag(inversion: .prefixedNo, help: "Write TensorBoard's event file to --out/tensorboard (rank 0): the figures of metrics.jsonl, the sample grids, histograms with --histogram-every; view with tensorboard --logdir OUT/tensorboard.")
    var tensorboard = true

    @Option(name: .customLong("histogram-every"), help: ArgumentHelp("Every N steps and at the end, TensorBoard histograms of every parameter tensor and its last gradient (default 0: none).", valueName: "N"))
    var histogramEvery: Int = 0

    @Flag(name: .customLong("sync-bn"), inversion: .prefixedNo,
          help: "Batch norm statistics over the global batch (all ranks), as one process with batch x ranks (default: each rank's own).")
    var syncBatchNorm: Bool?

    @Option(name: .customLong("sample-every"), help: "Steps between sample grids (0: only at the end; default 1000, or the preset's).")
    var sampleEvery: Int?

    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (0: only at the end; default 5000, or the preset's).")
    var checkpointEvery: Int?

    @Option(help: "Checkpoints to keep: after each write, all but the newest N in --out/checkpoints are deleted.")
    var keep: Int = 5

    @Option(name: .customLong("log-every"), help: "Steps between progress lines and metrics records.")
    var logEvery: Int = 100

    @Option(name: .customLong("check-every"), help: "Steps between checks that all ranks hold identical parameters.")
    var checkEvery: Int = 100

    @Option(help: ArgumentHelp("Repeat the run that wrote FILE (its --out's run.json): its configuration and schedule, its data folder unless --data; with the same ranks, the same losses step for step. Needs a new --out; flags that change the run are refused beside it.", valueName: "FILE"))
    var config: String?

    @Option(help: ArgumentHelp("Continue from the newest checkpoint in --out that loads (alone), or from FILE, with its model and optimizer settings (only --lr, the length, the outputs and the intervals may change).", valueName: "FILE"))
    var resume: String?

    @Option(help: instructionSetHelp)
    var isa: InstructionSet?

    @Option(help: "Threads per rank for the kernels (default: the cores this process may use, shared among the ranks on its host; results are identical for every count).")
    var threads: Int?

    @Flag(help: "Split every step, per rank, into compute, waiting for the slowest rank and the all-reduce (adds one barrier per network per step); printed at each --log-every and kept in metrics.jsonl.")
    var profile = false

    @Option(help: ArgumentHelp("Write a Chrome trace of every rank's steps (layers, phases, all-reduces with their bytes) to FILE; open it in Perfetto or chrome://tracing.", valueName: "FILE"))
    var timeline: String?

    @Option(name: .customLong("progress"), help: ArgumentHelp("The progress line at each --log-every: live (redrawn in place), plain (a line each) or none (default: live on a terminal, else plain; launch/train decides from its own output).", valueName: "STYLE"))
    var progressStyle: ProgressStyle?

    @Option(name: .customLong("stall-timeout"), help: ArgumentHelp("Seconds a collective may wait for the other ranks before the job stops, naming the ranks that did not arrive.", valueName: "S"))
    var stallTimeout: Double = 60

    @Option(name: .customLong("max-loss"), help: "A step whose loss (either network's) is above this, or not finite, stops the run: training has diverged.")
    var maxLoss: Double = 1e6

    @OptionGroup var exchange: ExchangeFlags

    func validate() throws {
        if steps != nil && epochs != nil { throw ValidationError("give --steps or --epochs, not both") }
        for (name, value) in [("--steps", steps), ("--epochs", epochs), ("--batch-size", batchSize), ("--threads", threads)] {
            if let value, value <= 0 { throw ValidationError("\(name) must be a positive integer, got \(value)") }
        }
        for (flag, value) in [("--lr", lr), ("--g-lr", generatorLR), ("--d-lr", discriminatorLR)] {
            if let value, !(value > 0 && value.isFinite) { throw ValidationError("\(flag) must be a positive number, got \(value)") }
        }
        for (name, value) in [("--beta1", beta1), ("--beta2", beta2)] {
            if let value, !(value >= 0 && value < 1) { throw ValidationError("\(name) must be in [0, 1), got \(value)") }
        }
        if let labelSmoothing, !(labelSmoothing >= 0 && labelSmoothing < 1) {
            throw ValidationError("--label-smoothing must be in [0, 1), got \(labelSmoothing)")
        }
        for (name, value) in [("--sample-every", sampleEvery), ("--checkpoint-every", checkpointEvery)] {
            if let value, value < 0 { throw ValidationError("\(name) must be 0 or more, got \(value)") }
        }
        if let preset, Preset.named(preset) == nil {
            throw ValidationError("--preset \(preset): no such preset; choose one of \(Preset.all.map(\.name).joined(separator: ", "))")
        }
        if let criticSteps, criticSteps <= 0 { throw ValidationError("--critic-steps must be a positive integer, got \(criticSteps)") }
        if let clip, !(clip > 0 && clip.isFinite) { throw ValidationError("--clip must be a positive number, got \(clip)") }
        if let gpWeight, !(gpWeight >= 0 && gpWeight.isFinite) { throw ValidationError("--gp-weight must be 0 or more, got \(gpWeight)") }
        if let evalEvery, evalEvery <= 0 { throw ValidationError("--eval-every must be a positive integer, got \(evalEvery)") }
        if histogramEvery < 0 { throw ValidationError("--histogram-every must be 0 (none) or a positive integer, got \(histogramEvery)") }
        if histogramEvery > 0 && !tensorboard { throw ValidationError("--histogram-every writes to TensorBoard's file: drop --no-tensorboard or --histogram-every") }
        if evalCount < 2 { throw ValidationError("--eval-count must be 2 or more (a covariance needs two images), got \(evalCount)") }
        if let maxSeconds, !(maxSeconds > 0 && maxSeconds.isFinite) {
            throw ValidationError("--max-seconds must be a positive number, got \(maxSeconds)")
        }
        for (name, value) in [("--log-every", logEvery), ("--check-every", checkEvery), ("--keep", keep)] where value <= 0 {
            throw ValidationError("\(name) must be a positive integer, got \(value)")
        }
        if let dropout, !(dropout >= 0 && dropout < 1) { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
        for (name, value) in [("--stall-timeout", stallTimeout), ("--max-loss", maxLoss)] where !(value > 0 && value.isFinite) {
            throw ValidationError("\(name) must be a positive number, got \(value)")
        }
        if out?.isEmpty == true { throw ValidationError("--out must name a folder") }
        if let config { try validateRepeat(config) }
        // Rank 0 alone writes the timeline and reads the checkpoint, on its host: under mpirun the
        // other ranks (other hosts, without those folders perhaps) leave these checks to it.
        let checksFiles = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].map { $0 == "0" } ?? true
        if let timeline {
            guard !timeline.isEmpty else { throw ValidationError("--timeline must name a file") }
            let folder = (timeline as NSString).deletingLastPathComponent
            var isFolder: ObjCBool = false
            if checksFiles, !folder.isEmpty,
               !(FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue) {
                throw ValidationError("--timeline \(timeline): there is no folder \(folder); create it, or name a file in an existing folder")
            }
        }
        if checksFiles, let resume, resume != Train.latestCheckpoint, !FileManager.default.fileExists(atPath: resume) {
            throw ValidationError("--resume \(resume): no such file; pass a checkpoint file, or --resume alone for the latest in --out")
        }
        _ = try chooseInstructionSet(flag: isa)
    }

    /// `--config FILE` repeats a run as recorded: it needs a new --out, and no flag that would change the run.
    func validateRepeat(_ config: String) throws {
        guard out != nil else { throw ValidationError("--config \(config) needs --out NEW, a folder for the repeated run") }
        let given: [(String, Bool)] = [
            ("--preset", preset != nil), ("--model", model != nil), ("--steps", steps != nil), ("--epochs", epochs != nil),
            ("--batch-size", batchSize != nil), ("--lr", lr != nil), ("--g-lr", generatorLR != nil), ("--d-lr", discriminatorLR != nil),
            ("--beta1", beta1 != nil), ("--beta2", beta2 != nil), ("--seed", seed != nil), ("--label-smoothing", labelSmoothing != nil),
            ("--noise", noise != nil), ("--update-scheme", updateScheme != nil), ("--dropout", dropout != nil),
            ("--loss", loss != nil), ("--optimizer", optimizer != nil), ("--critic-steps", criticSteps != nil),
            ("--d-update", discriminatorUpdate != nil), ("--g-noise", generatorNoise != nil), ("--clip", clip != nil),
            ("--gp-weight", gpWeight != nil), ("--ema", ema != nil), ("--eval-every", evalEvery != nil),
            ("--eval-count", evalCount != 10_000), ("--max-seconds", maxSeconds != nil), ("--no-tensorboard", !tensorboard),
            ("--histogram-every", histogramEvery != 0), ("--sync-bn", syncBatchNorm != nil), ("--sample-every", sampleEvery != nil),
            ("--checkpoint-every", checkpointEvery != nil), ("--keep", keep != 5), ("--log-every", logEvery != 100),
            ("--check-every", checkEvery != 100), ("--resume", resume != nil), ("--profile", profile), ("--max-loss", maxLoss != 1e6),
            ("--no-overlap", exchange.noOverlap), ("--bucket-kb", exchange.bucketKiB != ExchangeOptions().bucketBytes >> 10),
            ("--allreduce-fp16", exchange.halfPrecision),
        ]
        if let flag = given.first(where: \.1)?.0 {
            throw ValidationError("--config repeats the recorded run, so \(flag) cannot change it; drop \(flag), or edit a copy of \(config)")
        }
    }

    /// The settings the flags give (nil: not given).
    var configurationRequest: ConfigurationRequest {
        var r = ConfigurationRequest()
        r.model = model
        r.batchSize = batchSize
        r.learningRate = lr
        r.generatorLearningRate = generatorLR
        r.discriminatorLearningRate = discriminatorLR
        r.beta1 = beta1
        r.beta2 = beta2
        r.seed = seed
        r.labelSmoothing = labelSmoothing
        r.noise = noise
        r.updateScheme = updateScheme
        r.dropoutRate = dropout
        r.synchronizedBatchNorm = syncBatchNorm
        r.loss = loss
        r.optimizer = optimizer
        r.criticSteps = criticSteps
        r.discriminatorUpdate = discriminatorUpdate
        r.generatorNoise = generatorNoise
        r.clipValue = clip
        r.penaltyWeight = gpWeight
        r.generatorAverageDecay = ema
        return r
    }

    /// The preset's settings (its global batch split over `ranks`), then the flags'.
    func request(ranks: Int) -> ConfigurationRequest {
        guard let preset = preset.flatMap(Preset.named) else { return configurationRequest }
        var r = preset.request
        r.batchSize = preset.batchSize(ranks: ranks)
        return r.overridden(by: configurationRequest)
    }

    /// The run folder: --out, else runs/PRESET or runs/MODEL.
    var outputDirectory: String { out ?? "runs/\(preset ?? (model ?? .mlp).rawValue)" }

    /// The schedule and outputs, for a run of `model` with `stepsPerEpoch` steps per epoch.
    func trainingOptions(model: ModelKind, stepsPerEpoch: Int) -> TrainingOptions {
        var o = TrainingOptions(outputDirectory: outputDirectory)
        let preset = preset.flatMap(Preset.named)
        let defaultLength: TrainingLength = preset?.length ?? (model.isConvolutional ? .epochs(50) : .steps(20000))
        o.length = epochs.map(TrainingLength.epochs) ?? steps.map(TrainingLength.steps) ?? defaultLength
        o.logEvery = logEvery
        o.sampleEvery = sampleEvery ?? preset?.sampleEvery.steps(perEpoch: stepsPerEpoch) ?? 1000
        o.checkpointEvery = checkpointEvery ?? preset?.checkpointEvery.steps(perEpoch: stepsPerEpoch) ?? 5000
        if let preset { o.sampleCount = preset.sampleCount }
        o.maxSeconds = maxSeconds ?? preset?.maxSeconds
        o.evaluateEvery = evalEvery ?? 0
        o.tensorboard = tensorboard
        o.histogramEvery = histogramEvery
        o.checkEvery = checkEvery
        o.keep = keep
        o.profile = profile
        o.maxLoss = maxLoss
        o.exchange = exchange.options
        return o
    }

    /// `--threads`, else this rank's share of the host: Open MPI says how many ranks run here.
    static func defaultThreads(environment: [String: String]) -> Int {
        Backends.defaultThreads(localRanks: environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? 1)
    }

    func run() throws {
        let communicator = try startMPI(stallTimeout: stallTimeout)
        // Ctrl-C, `kill`, Slurm's preemption: finish the step, checkpoint, exit 130 or 143.
        StopSignal.install()
        let outcome: RunOutcome
        let progress = communicator.isRoot ? TerminalProgress(style: progressStyle ?? .automatic) : nil
        do {
            // A resumed run's configuration is its checkpoint's, which rank 0 reads.
            let plan = try resume.map { source in
                try ResumePlan.make(source == Train.latestCheckpoint ? .latest : .file(source),
                                    directory: outputDirectory + "/checkpoints", request: request(ranks: communicator.size),
                                    communicator: communicator)
            }
            // --config: every rank reads the record (at the same path on every host, as --data).
            let recorded = try config.map(RunRecord.read)
            let configuration = plan?.configuration ?? recorded?.configuration ?? request(ranks: communicator.size).fresh
            if communicator.isRoot, let recorded, recorded.ranks != communicator.size {
                FileHandle.standardError.write(Data(("gantry: note: \(config!) ran on \(recorded.ranks) rank(s), this run on "
                    + "\(communicator.size): each rank keeps its batch \(configuration.batchSize), so the global batch and the "
                    + "losses differ; run with -np \(recorded.ranks) to repeat it step for step\n").utf8))
            }
            if communicator.isRoot, plan == nil, batchSize == nil,
               let note = preset.flatMap(Preset.named)?.batchNote(ranks: communicator.size) {
                FileHandle.standardError.write(Data("gantry: note: \(note)\n".utf8))
            }
            let environment = ProcessInfo.processInfo.environment
            let directory = resolveDataDirectory(explicit: data ?? recorded?.dataDirectory, environment: environment)
            let shard: MNISTShardData
            do {
                shard = try MNISTShardData(directory: directory, configuration: configuration,
                                               rank: communicator.rank, ranks: communicator.size)
            } catch {
                // Each host reads its own files: a host without them names itself.
                throw DataLoadError(host: communicator.processorName, ranks: communicator.size, underlying: error)
            }
            var options = recorded?.schedule.options(outputDirectory: outputDirectory)
                ?? trainingOptions(model: configuration.model,
                                   stepsPerEpoch: max(1, shard.batchesPerEpoch / configuration.criticSteps))
            options.resume = plan
            let instructionSet = try chooseInstructionSet(flag: isa)
            let backend = try Backends.make(instructionSet,
                                            threads: threads ?? Train.defaultThreads(environment: environment))
            var outputs: [TrainingOutput] = progress.map { [$0] } ?? []
            if let timeline { outputs.append(Timeline(path: timeline, communicator: communicator)) }
            let evaluationCount = recorded?.evaluationCount ?? evalCount
            if communicator.isRoot {
                outputs.append(RunRecordFile(RunRecord(
                    gantry: .init(version: BuildInfo.version, commit: BuildInfo.commit), command: CommandLine.arguments,
                    configuration: configuration, schedule: .init(options), evaluationCount: evaluationCount,
                    ranks: communicator.size, threads: backend.threads, hosts: [], cpu: BuildInfo.cpu,
                    kernels: instructionSet.rawValue, dataDirectory: directory, dataFiles: try RunRecord.dataFiles(in: directory))))
            }
            let evaluator = try (options.evaluateEvery > 0 ? evaluationCount : nil).map { count in
                try TrainingEvaluator(count: count, directory: directory, isRoot: communicator.isRoot,
                                      environment: environment, backend: backend)
            }
            let run = try TrainingRun(configuration: configuration, options: options, data: shard,
                                      communicator: communicator, backend: backend, outputs: outputs,
                                      evaluator: evaluator?.evaluator)
            outcome = try run.run()
            // Said before MPI_Finalize: once the other ranks exit 143, mpirun may end rank 0 at any moment.
            if case let .stopped(stop) = outcome, communicator.isRoot {
                print("gantry: stopped on \(StopSignal.name(stop.signal)) after step \(stop.step); "
                      + "continue with the same command and --resume")
            }
            try communicator.finalize()
        } catch {
            // One path for every failure: the whole job stops; saved files are complete
            // (they are written atomically).
            progress?.closeLine()
            communicator.abort(message: "gantry: \(error)", exitCode: exitStatus(for: error))
        }
        if case let .stopped(stop) = outcome { throw ExitCode(128 + stop.signal) }
    }
}

/// A rank could not load its shard of `--data`: the error (which names the path), and the host
/// the rank ran on, since each host reads the data folder from its own disk.
struct DataLoadError: Error, CustomStringConvertible {
    let host: String
    let ranks: Int
    let underlying: Error

    var description: String {
        "on host \(host): \(underlying)" + (ranks > 1 && missingHere ? " (every host reads --data at the same path)" : "")
    }

    /// Whether the files are missing or cannot be opened on this host (rather than damaged).
    var missingHere: Bool {
        if case .missingFiles? = underlying as? DatasetError { return true }
        if case .cannotOpen? = underlying as? FileError { return true }
        return false
    }
}

/// How gradients travel between ranks, for `gantry train` and `gantry bench`.
struct ExchangeFlags: ParsableArguments {
    @Flag(name: .customLong("no-overlap"), help: "All-reduce each network's gradients after its backward pass, in one call, instead of in buckets started while backward runs.")
    var noOverlap = false

    @Option(name: .customLong("bucket-kb"), help: "Gradient KiB per overlapped all-reduce (a bucket closes at the first layer boundary past it).")
    var bucketKiB: Int = ExchangeOptions().bucketBytes >> 10

    @Flag(name: .customLong("allreduce-fp16"), help: "Send gradients as IEEE half precision (scaled by a power of two from the largest gradient over the ranks, summed in fp32): half the bytes, about 3 significant digits per rank.")
    var halfPrecision = false

    func validate() throws {
        if bucketKiB <= 0 { throw ValidationError("--bucket-kb must be a positive integer, got \(bucketKiB)") }
    }

    var options: ExchangeOptions {
        var o = ExchangeOptions()
        o.overlap = !noOverlap
        o.bucketBytes = bucketKiB << 10
        o.halfPrecision = halfPrecision
        return o
    }
}
