import Distributed
import Foundation
import Optim

/// The configuration settings a user asked for: nil where a flag was not given. A new run fills
/// the rest from the model's defaults; a resumed run takes them from its checkpoint, and a
/// given setting must agree with it, unless it may change mid-run (the learning rate).
public struct ConfigurationRequest: Sendable, Equatable {
    public var model: ModelKind?
    public var batchSize: Int?
    public var learningRate: Float?
    /// One network's learning rate, instead of `learningRate` for it (two time-scale updates,
    /// Heusel et al. 2017).
    public var generatorLearningRate: Float?
    public var discriminatorLearningRate: Float?
    public var beta1: Float?
    public var beta2: Float?
    public var seed: UInt64?
    public var labelSmoothing: Float?
    public var noise: NoiseDistribution?
    public var updateScheme: UpdateScheme?
    public var dropoutRate: Float?
    public var synchronizedBatchNorm: Bool?
    public var loss: LossKind?
    public var optimizer: OptimizerKind?
    public var criticSteps: Int?
    public var discriminatorUpdate: DiscriminatorUpdate?
    public var generatorNoise: GeneratorNoise?
    public var clipValue: Float?
    public var penaltyWeight: Float?
    /// Adam's ε (no flag: presets set it, as TF1's 1e-8 for seed 002).
    public var epsilon: Float?
    public var generatorAverageDecay: Float?

    public init() {}

    /// Every setting of `c` given: a resumed run must match them all, the learning rate too.
    public init(_ c: GANConfiguration) {
        model = c.model
        batchSize = c.batchSize
        learningRate = c.generatorOptimizer.learningRate
        if c.discriminatorOptimizer.learningRate != c.generatorOptimizer.learningRate {
            discriminatorLearningRate = c.discriminatorOptimizer.learningRate
        }
        beta1 = c.generatorOptimizer.beta1
        beta2 = c.generatorOptimizer.beta2
        seed = c.seed
        labelSmoothing = c.labelSmoothing
        noise = c.noise
        updateScheme = c.updateScheme
        dropoutRate = c.dropoutRate
        synchronizedBatchNorm = c.synchronizedBatchNorm
        loss = c.loss
        optimizer = c.generatorOptimizer.kind
        criticSteps = c.criticSteps
        discriminatorUpdate = c.discriminatorUpdate
        generatorNoise = c.generatorNoise
        clipValue = c.clipValue
        penaltyWeight = c.penaltyWeight
        epsilon = c.generatorOptimizer.epsilon
        generatorAverageDecay = c.generatorAverageDecay
    }

    /// These settings, with every setting `other` gives replacing this one's (a preset, then
    /// the flags beside it).
    public func overridden(by other: ConfigurationRequest) -> ConfigurationRequest {
        var r = self
        func take<T>(_ path: WritableKeyPath<ConfigurationRequest, T?>) {
            if let value = other[keyPath: path] { r[keyPath: path] = value }
        }
        // --lr replaces the networks' own rates, unless given beside them.
        if other.learningRate != nil { r.generatorLearningRate = nil; r.discriminatorLearningRate = nil }
        take(\.generatorLearningRate); take(\.discriminatorLearningRate)
        take(\.model); take(\.batchSize); take(\.learningRate); take(\.beta1); take(\.beta2); take(\.seed)
        take(\.labelSmoothing); take(\.noise); take(\.updateScheme); take(\.dropoutRate); take(\.synchronizedBatchNorm)
        take(\.loss); take(\.optimizer); take(\.criticSteps); take(\.discriminatorUpdate); take(\.generatorNoise)
        take(\.clipValue); take(\.penaltyWeight); take(\.epsilon); take(\.generatorAverageDecay)
        return r
    }

    /// A new run's configuration: the model's defaults (the MLP's when no model is given), with
    /// every given setting applied.
    public var fresh: GANConfiguration {
        var c = GANConfiguration.defaults(for: model ?? .mlp, loss: loss ?? .bce)
        apply(to: &c)
        return c
    }

    private func apply(to c: inout GANConfiguration) {
        if let batchSize { c.batchSize = batchSize }
        if let optimizer, optimizer != c.generatorOptimizer.kind {
            let defaults: OptimizerConfig = optimizer == .rmsprop ? .rmsprop() : .adam(learningRate: 1e-3)
            c.generatorOptimizer = defaults
            c.discriminatorOptimizer = defaults
        }
        for optimizer in [\GANConfiguration.generatorOptimizer, \.discriminatorOptimizer] {
            if let learningRate { c[keyPath: optimizer].learningRate = learningRate }
            if let beta1 { c[keyPath: optimizer].beta1 = beta1 }
            if let beta2 { c[keyPath: optimizer].beta2 = beta2 }
            if let epsilon { c[keyPath: optimizer].epsilon = epsilon }
        }
        if let generatorLearningRate { c.generatorOptimizer.learningRate = generatorLearningRate }
        if let discriminatorLearningRate { c.discriminatorOptimizer.learningRate = discriminatorLearningRate }
        if let criticSteps { c.criticSteps = criticSteps }
        if let discriminatorUpdate { c.discriminatorUpdate = discriminatorUpdate }
        if let generatorNoise { c.generatorNoise = generatorNoise }
        if let clipValue { c.clipValue = clipValue }
        if let penaltyWeight { c.penaltyWeight = penaltyWeight }
        if let seed { c.seed = seed }
        if let labelSmoothing { c.labelSmoothing = labelSmoothing }
        if let noise { c.noise = noise }
        if let updateScheme { c.updateScheme = updateScheme }
        if let dropoutRate { c.dropoutRate = dropoutRate }
        if let synchronizedBatchNorm { c.synchronizedBatchNorm = synchronizedBatchNorm }
        if let generatorAverageDecay { c.generatorAverageDecay = generatorAverageDecay }
    }

    /// A resumed run's configuration: `stored` (the checkpoint's at `path`, written by
    /// `storedRanks` ranks, resumed on `ranks`), with the learning rate changed if one is given
    /// (and a note saying so). Any other given setting must equal the stored one: a resumed run
    /// keeps its model and optimizer settings. The batch per rank may change only where it keeps
    /// the global batch on another number of ranks (a run restarted on the hosts that remain).
    public func resumed(from stored: GANConfiguration, path: String,
                        storedRanks: Int = 1, ranks: Int = 1) throws -> (GANConfiguration, [ResumeNote]) {
        func check<T: Equatable>(_ flag: String, _ requested: T?, _ kept: T) throws {
            if let requested, requested != kept {
                throw CheckpointError.settingChanged(path: path, flag: flag, stored: "\(kept)", requested: "\(requested)")
            }
        }
        try check("--model", model?.rawValue, stored.model.rawValue)
        let splitBatch = batchSize.flatMap { batch in
            batch != stored.batchSize && batch * ranks == stored.batchSize * storedRanks ? batch : nil
        }
        if splitBatch == nil { try check("--batch-size", batchSize, stored.batchSize) }
        try check("--beta1", beta1, stored.generatorOptimizer.beta1)
        try check("--beta2", beta2, stored.generatorOptimizer.beta2)
        try check("--seed", seed, stored.seed)
        try check("--label-smoothing", labelSmoothing, stored.labelSmoothing)
        try check("--noise", noise?.rawValue, stored.noise.rawValue)
        try check("--update-scheme", updateScheme?.rawValue, stored.updateScheme.rawValue)
        try check("--dropout", dropoutRate, stored.dropoutRate)
        try check("--sync-bn", synchronizedBatchNorm, stored.synchronizedBatchNorm)
        try check("--loss", loss?.rawValue, stored.loss.rawValue)
        try check("--optimizer", optimizer?.rawValue, stored.generatorOptimizer.kind.rawValue)
        try check("--critic-steps", criticSteps, stored.criticSteps)
        try check("--d-update", discriminatorUpdate?.rawValue, stored.discriminatorUpdate.rawValue)
        try check("--g-noise", generatorNoise?.rawValue, stored.generatorNoise.rawValue)
        try check("--clip", clipValue, stored.clipValue ?? 0)
        try check("--gp-weight", penaltyWeight, stored.penaltyWeight)
        try check("Adam's epsilon (a preset's)", epsilon, stored.generatorOptimizer.epsilon)
        try check("--ema", generatorAverageDecay, stored.generatorAverageDecay)
        var c = stored, notes: [ResumeNote] = []
        let g = generatorLearningRate ?? learningRate, d = discriminatorLearningRate ?? learningRate
        let storedG = stored.generatorOptimizer.learningRate, storedD = stored.discriminatorOptimizer.learningRate
        if let learningRate, generatorLearningRate == nil, discriminatorLearningRate == nil, storedG == storedD {
            if learningRate != storedG { notes.append(.learningRateChanged(from: storedG, to: learningRate)) }
        } else {
            if let g, g != storedG { notes.append(.networkLearningRateChanged(.generator, from: storedG, to: g)) }
            if let d, d != storedD { notes.append(.networkLearningRateChanged(.discriminator, from: storedD, to: d)) }
        }
        if let g { c.generatorOptimizer.learningRate = g }
        if let d { c.discriminatorOptimizer.learningRate = d }
        if let splitBatch {
            c.batchSize = splitBatch
            notes.append(.batchSplitChanged(fromRanks: storedRanks, toRanks: ranks, fromBatch: stored.batchSize, toBatch: splitBatch))
        } else if storedRanks != ranks {
            notes.append(.rankCountChanged(from: storedRanks, to: ranks, batchSize: c.batchSize))
        }
        return (c, notes)
    }
}

/// What a resumed run does differently from the run that wrote its checkpoint.
public enum ResumeNote: Sendable, Equatable, Codable {
    /// `--lr` differs from the checkpoint's: both networks continue at `to`.
    case learningRateChanged(from: Float, to: Float)
    /// One network continues at another learning rate (`--g-lr`, `--d-lr`, or `--lr` when
    /// the checkpoint's networks had different ones).
    case networkLearningRateChanged(NetworkRole, from: Float, to: Float)
    /// Another number of ranks: the shards, so the data order, change (and the global batch,
    /// the per-rank batch times the ranks).
    case rankCountChanged(from: Int, to: Int, batchSize: Int)
    /// Another number of ranks, each with the batch that keeps the global batch
    /// (`--batch-size` given so, as `launch/train --restarts` does): the shards, so the data
    /// order, change; the global batch does not.
    case batchSplitChanged(fromRanks: Int, toRanks: Int, fromBatch: Int, toBatch: Int)

    public var description: String {
        switch self {
        case let .learningRateChanged(from, to):
            return "warning: --lr \(to) replaces the checkpoint's learning rate \(from) for both networks from here"
        case let .networkLearningRateChanged(role, from, to):
            return "warning: learning rate \(to) replaces the checkpoint's \(from) for the \(role.rawValue) from here"
        case let .rankCountChanged(from, to, batch):
            return "resuming on \(to) rank\(to == 1 ? "" : "s") from a checkpoint of \(from): each rank's shard, so the data order, "
                + "changes from here, and the global batch is \(batch * to) (was \(batch * from)); the run is no longer "
                + "bit-identical to an uninterrupted one"
        case let .batchSplitChanged(fromRanks, toRanks, fromBatch, toBatch):
            return "resuming on \(toRanks) rank\(toRanks == 1 ? "" : "s") x batch \(toBatch) from a checkpoint of \(fromRanks) "
                + "x batch \(fromBatch): the global batch stays \(toBatch * toRanks), but each rank's shard, so the data order, "
                + "changes from here; the run is no longer bit-identical to an uninterrupted one"
        }
    }
}

/// Where a resumed run starts: the checkpoint, the configuration it runs with, and what it
/// passed over and changes. Made by rank 0, which alone reads the folder (other hosts may not
/// see it), and sent to every rank.
public struct ResumePlan: Sendable, Equatable {
    public var path: String
    public var configuration: GANConfiguration
    public var skipped: [SkippedCheckpoint]
    public var notes: [ResumeNote]

    /// Rank 0 finds the checkpoint (`source`: a file, or the newest of `directory` that loads,
    /// passing over damaged ones), checks `request` against its configuration, and broadcasts
    /// the plan. A collective. Errors on rank 0 end the job there (the CLI aborts it).
    public static func make(_ source: ResumeSource, directory: String, request: ConfigurationRequest,
                            communicator: Communicator) throws -> ResumePlan {
        var text = ""
        if communicator.isRoot {
            let plan = try find(source, directory: directory, request: request, ranks: communicator.size)
            text = String(decoding: try JSONEncoder().encode(Wire(plan)), as: UTF8.self)
        }
        let received = try communicator.broadcast(text, root: 0)
        return try JSONDecoder().decode(Wire.self, from: Data(received.utf8)).plan
    }

    /// Rank 0's part: each candidate, newest first, until one loads whole into a model of its
    /// configuration. A changed setting or another model's checkpoint stops at once (every
    /// older checkpoint of the folder would be the same).
    static func find(_ source: ResumeSource, directory: String, request: ConfigurationRequest, ranks: Int) throws -> ResumePlan {
        let candidates: [String]
        switch source {
        case .file(let path): candidates = [path]
        case .latest:
            candidates = Checkpoint.all(in: directory).reversed()
            guard !candidates.isEmpty else { throw CheckpointError.noCheckpointIn(directory: directory) }
        }
        var skipped: [SkippedCheckpoint] = []
        for path in candidates {
            do {
                let stored = try Checkpoint.configuration(at: path)
                let written = try Checkpoint.ranks(at: path) ?? ranks
                let (configuration, notes) = try request.resumed(from: stored, path: path, storedRanks: written, ranks: ranks)
                // Load it whole (every tensor's checksum) into a model of that configuration.
                let trial = GANTrainer(configuration: configuration, communicator: SingleProcessCommunicator())
                _ = try Checkpoint.restore(trial, from: path)
                return ResumePlan(path: path, configuration: configuration, skipped: skipped, notes: notes)
            } catch let error as CheckpointError {
                switch error {
                case .incompatible, .settingChanged: throw error
                default:
                    if case .file = source { throw error }
                    skipped.append(SkippedCheckpoint(path: path, reason: "\(error)"))
                }
            } catch {
                if case .file = source { throw error }
                skipped.append(SkippedCheckpoint(path: path, reason: "\(error)"))
            }
        }
        throw CheckpointError.noLoadableCheckpointIn(directory: directory, skipped: skipped)
    }

    /// The plan as JSON, to broadcast.
    private struct Wire: Codable {
        var path: String
        var configuration: GANConfiguration
        var skipped: [[String]]
        var notes: [ResumeNote]

        init(_ plan: ResumePlan) {
            path = plan.path
            configuration = plan.configuration
            skipped = plan.skipped.map { [$0.path, $0.reason] }
            notes = plan.notes
        }

        var plan: ResumePlan {
            return ResumePlan(path: path, configuration: configuration,
                              skipped: skipped.map { SkippedCheckpoint(path: $0[0], reason: $0[1]) }, notes: notes)
        }
    }
}
