import Foundation
import Distributed
import GAN
import Kernels
import NN

/// Data-parallel training across the ranks of the job: replicas stay identical, and N ranks
/// with batch b compute what one process computes with batch N·b on the same examples.
func registerTrainingChecks(into harness: inout Harness) {
    // Every configuration is a `let`, made whole before its check is registered: the checks
    // run later, and a closure that captured a `var` would see the edits made after it.
    for scheme in UpdateScheme.allCases {
        let replicas = configuration(.mlp) { $0.batchSize = 16; $0.updateScheme = scheme }
        harness.add("parameters identical on every rank after 5 steps (mlp, \(scheme.rawValue))") { check in
            try checkReplicasAgree(check, configuration: replicas, steps: 5)
        }
        let equivalence = configuration(.mlp) { $0.updateScheme = scheme; $0.labelSmoothing = 0.1; $0.seed = 7 }
        harness.add("N ranks x batch 128/N == 1 rank x batch 128 after 5 steps (mlp, \(scheme.rawValue), label smoothing 0.1)") { check in
            try checkEquivalence(check, configuration: equivalence, globalBatch: 128, steps: 5)
        }
    }

    harness.add("the drift detector fires: one rank's parameter nudged by one ulp, every rank sees it (mlp)") { check in
        let trainer = GANTrainer(configuration: configuration(.mlp) { $0.batchSize = 4 }, communicator: check.comm)
        try trainer.initializeParameters()
        check.expect(try trainer.ranksDifferingFromRoot() == [], "identical replicas reported as different")
        let last = check.comm.size - 1
        if check.comm.rank == last { nudge(trainer) }
        check.expect(try trainer.ranksDifferingFromRoot() == (last == 0 ? [] : [last]),
                     "replicas one ulp apart: expected rank \(last) named")
    }

    let drifting = configuration(.mlp) { $0.batchSize = 4 }
    harness.add("the drift detector stops the run, naming the rank that differs: last rank nudged after step 1, "
                + "--check-every 2 (mlp, batch 4)") { check in
        let last = check.comm.size - 1
        let nudger = NudgeAfterFirstStep(onRank: last)
        try withRun(check, drifting, outputs: [nudger], { $0.logEvery = 1; $0.checkEvery = 2 }) { run, _ in
            nudger.trainer = run.trainer
            do {
                try run.run()
                check.expect(check.comm.size == 1, "the run ended normally with rank \(last) holding other parameters")
            } catch let error as TrainingError {
                check.expect(error == .replicasDiverged(step: 2, ranks: [last]), "stopped with \(error)")
            }
        }
    }

    let stopping = configuration(.mlp) { $0.batchSize = 4 }
    harness.add("a stop request on the last rank only, during step 2: every rank stops after step 2, rank 0 checkpoints it (mlp, batch 4)") { check in
        let comm = check.comm, last = comm.size - 1
        var requests = 0
        let request = { () -> Int32? in
            requests += 1
            return comm.rank == last && requests >= 2 ? SIGTERM : nil
        }
        try withRun(check, stopping, stopRequest: request, { $0.checkpointEvery = 0; $0.sampleEvery = 0 }) { run, options in
            let path = options.checkpointDirectory + "/" + Checkpoint.fileName(step: 2)
            let outcome = try run.run()
            check.expect(outcome == .stopped(RunStop(signal: SIGTERM, step: 2, checkpoint: path, outputDirectory: options.outputDirectory)),
                         "ended with \(outcome)")
            if comm.isRoot { check.expect(Checkpoint.all(in: options.checkpointDirectory) == [path], "no checkpoint of step 2 alone") }
        }
    }

    // Overlapped buckets sum what one all-reduce of the whole buffer sums, element by element:
    // the parameters must come out bit for bit the same. 256-byte buckets give each layer with
    // parameters its own bucket, 1 MiB keeps the MLP's networks in one.
    for (model, batch, steps) in [(ModelKind.mlp, 16, 4), (.dcgan, 4, 2)] {
        for scheme in UpdateScheme.allCases {
            let c = configuration(model) { $0.batchSize = batch; $0.updateScheme = scheme }
            for bucketBytes in [256, 1 << 20] {
                harness.add("overlapped \(bucketBytes)-byte buckets == one all-reduce after backward, bit for bit, after \(steps) steps "
                            + "(\(model.rawValue), \(scheme.rawValue))") { check in
                    try checkOverlapMatchesOneAllReduce(check, configuration: c, bucketBytes: bucketBytes, steps: steps)
                }
            }
        }
    }

    // fp16 gradients: each rank's contribution keeps 11 significant bits of its bucket's
    // largest value (smaller ones fewer, down to the subnormals); Adam divides by the gradients'
    // root mean square, so an element whose gradient is tiny can move by up to the learning rate
    // in either direction. The tolerance says how far: 2 % of each network's largest parameter.
    for model in [ModelKind.mlp, .dcgan] {
        let c = configuration(model) { $0.seed = 11; $0.dropoutRate = 0; $0.synchronizedBatchNorm = true }
        var half = ExchangeOptions()
        half.halfPrecision = true
        half.bucketBytes = 64 << 10
        let (global, steps) = model == .mlp ? (128, 5) : (32, 3)
        harness.add("N ranks x batch \(global)/N with --allreduce-fp16 ~= 1 rank x batch \(global) to 2 % after \(steps) steps "
                    + "(\(model.rawValue))") { check in
            try checkEquivalence(check, configuration: c, globalBatch: global, steps: steps, exchange: half, tolerance: 2e-2)
        }
    }

    let dcgan = configuration(.dcgan) { $0.batchSize = 8 }
    harness.add("parameters identical on every rank after 2 steps (dcgan, dropout 0.3, per-rank batch norm)") { check in
        try checkReplicasAgree(check, configuration: dcgan, steps: 2)
    }
    // With synchronized statistics, batch norm sees the global batch on every rank; dropout's
    // masks are drawn per global example, so they too are the one rank's.
    for dropout: Float in [0, 0.3] {
        let synchronized = configuration(.dcgan) { $0.dropoutRate = dropout; $0.synchronizedBatchNorm = true; $0.seed = 5 }
        harness.add("N ranks x batch 64/N == 1 rank x batch 64 after 3 steps (dcgan, --sync-bn, dropout \(dropout))") { check in
            try checkEquivalence(check, configuration: synchronized, globalBatch: 64, steps: 3)
        }
    }

    // The other losses and update procedures: each critic update takes its own real batch, and
    // WGAN-GP's mixing weights are drawn per global example, so N ranks train what one does.
    // RMSprop divides each gradient by its root mean square, so in its first steps every
    // parameter moves by about lr·√(1/(1-ρ)) = 5e-4 whatever its gradient's size: an element
    // whose gradient is a rounding difference from 0 moves as much as any, and the clipped
    // critic's largest value is 0.01. The WGAN check allows 1e-3 of that for it.
    let procedures: [(String, GANConfiguration, Int, Int, Float)] = [
        ("mlp, --loss wgan-gp, 5 critic steps", configuration(.mlp, loss: .wganGP) { $0.seed = 3 }, 64, 3, 1e-4),
        ("dcgan-gp, --loss wgan-gp, 5 critic steps, --sync-bn",
         configuration(.dcganGP, loss: .wganGP) { $0.seed = 3; $0.synchronizedBatchNorm = true }, 16, 2, 1e-4),
        ("mlp, --loss wgan, --clip 0.01, rmsprop", configuration(.mlp, loss: .wgan) {
            $0.seed = 3; $0.generatorOptimizer = .rmsprop(); $0.discriminatorOptimizer = .rmsprop()
        }, 128, 3, 1e-3),
        ("mlp, --d-update split (seed 001)", configuration(.mlp) { $0.discriminatorUpdate = .split; $0.seed = 3 }, 128, 5, 1e-4),
        ("mlp, --g-noise same, uniform noise (seed 002)",
         configuration(.mlp) { $0.generatorNoise = .same; $0.noise = .uniform; $0.labelSmoothing = 0.1 }, 128, 5, 1e-4),
    ]
    for (name, c, global, steps, tolerance) in procedures {
        harness.add("N ranks x batch \(global)/N == 1 rank x batch \(global) to \(tolerance) after \(steps) steps (\(name))") { check in
            try checkEquivalence(check, configuration: c, globalBatch: global, steps: steps, tolerance: tolerance)
        }
    }
}

/// A model's defaults with `edits`, as a value.
private func configuration(_ model: ModelKind, loss: LossKind = .bce,
                           _ edits: (inout GANConfiguration) -> Void = { _ in }) -> GANConfiguration {
    var c = GANConfiguration.defaults(for: model, loss: loss)
    edits(&c)
    return c
}

/// The settings a check runs with, on one line (rank 0 prints it under the check's name).
private func describe(_ c: GANConfiguration) -> String {
    "    configuration: \(c.model.rawValue), batch \(c.batchSize) per rank, \(c.updateScheme.rawValue), seed \(c.seed), "
        + "label smoothing \(c.labelSmoothing), dropout \(c.dropoutRate), sync-bn \(c.synchronizedBatchNorm), "
        + "loss \(c.loss.rawValue), critic steps \(c.criticSteps), d-update \(c.discriminatorUpdate.rawValue), "
        + "g-noise \(c.generatorNoise.rawValue), noise \(c.noise.rawValue), optimizer \(c.generatorOptimizer.kind.rawValue)"
}

/// Each rank trains on its own examples: only the all-reduce keeps the replicas together.
private func checkReplicasAgree(_ check: CheckContext, configuration c: GANConfiguration, steps: Int) throws {
    let comm = check.comm
    if comm.rank == 0 { printLine(describe(c)) }
    let trainer = GANTrainer(configuration: c, communicator: comm)
    try trainer.initializeParameters()
    let real = syntheticImages(count: c.batchSize, pixels: c.pixelCount, seed: UInt64(100 + comm.rank))
    for step in 0..<steps { _ = try trainer.step(real: real, step: step) }
    check.expect(try trainer.parameterChecksumsAgree(), "parameter checksums differ between ranks")
    for network in [trainer.models.generator, trainer.models.discriminator] {
        let mine = Array(network.parameters.values)
        var high = mine, low = mine
        try high.withUnsafeMutableBufferPointer { try comm.allReduce($0, .max) }
        try low.withUnsafeMutableBufferPointer { try comm.allReduce($0, .min) }
        check.expect(high == low, "parameters differ between ranks")
    }
}

/// Two trainers on the same examples, one overlapping its all-reduces with backward in
/// buckets, the other all-reducing after backward: identical parameters and Adam moments.
private func checkOverlapMatchesOneAllReduce(_ check: CheckContext, configuration c: GANConfiguration, bucketBytes: Int,
                                             steps: Int) throws {
    let comm = check.comm
    var overlapped = ExchangeOptions(), after = ExchangeOptions()
    overlapped.bucketBytes = bucketBytes
    after.overlap = false
    let trainers = [overlapped, after].map { GANTrainer(configuration: c, communicator: comm, exchange: $0) }
    let real = syntheticImages(count: c.batchSize, pixels: c.pixelCount, seed: UInt64(200 + comm.rank))
    for trainer in trainers {
        try trainer.initializeParameters()
        for step in 0..<steps { _ = try trainer.step(real: real, step: step) }
    }
    for role in NetworkRole.allCases {
        let (a, b) = (trainers[0].models[role], trainers[1].models[role])
        check.expect(Array(a.parameters.values) == Array(b.parameters.values), "\(role.rawValue) parameters differ")
        check.expect(Array(a.parameters.gradients) == Array(b.parameters.gradients), "\(role.rawValue) averaged gradients differ")
    }
    let moments = trainers.map { [$0.generatorOptimizer, $0.discriminatorOptimizer].flatMap { $0.state.flatMap { Array($0.values) } } }
    check.expect(moments[0] == moments[1], "Adam's moments differ")
}

/// N ranks with batch `globalBatch / N` against one in-process replica with the whole batch,
/// on the same examples and noise: parameters (and batch norm running statistics) must agree
/// to `tolerance` (1e-4 unless given) of the largest value of each network.
private func checkEquivalence(_ check: CheckContext, configuration: GANConfiguration, globalBatch: Int,
                              steps: Int, exchange: ExchangeOptions = ExchangeOptions(), tolerance: Float = 1e-4) throws {
    let comm = check.comm
    if comm.rank == 0 { printLine(describe(configuration) + ", global batch \(globalBatch)") }
    guard globalBatch % comm.size == 0 else {
        check.fail("the global batch \(globalBatch) does not split over \(comm.size) ranks; use 2, 4 or 8")
        return
    }
    var c = configuration, whole = configuration
    c.batchSize = globalBatch / comm.size
    whole.batchSize = globalBatch
    let distributed = GANTrainer(configuration: c, communicator: comm, exchange: exchange)
    let single = GANTrainer(configuration: whole, communicator: SingleProcessCommunicator())
    try distributed.initializeParameters()
    try single.initializeParameters()
    let pixels = c.pixelCount
    // A step takes one global batch per critic update; each rank its slice of each.
    let batches = c.criticSteps
    for step in 0..<steps {
        let global = syntheticImages(count: globalBatch * batches, pixels: pixels, seed: UInt64(step))
        var local: [Float] = []
        for k in 0 ..< batches {
            let first: Int = (k * globalBatch + comm.rank * c.batchSize) * pixels
            local += global[first ..< first + c.batchSize * pixels]
        }
        _ = try distributed.step(real: local, step: step)
        _ = try single.step(real: global, step: step)
    }
    for (a, b) in [(distributed.models.generator, single.models.generator),
                   (distributed.models.discriminator, single.models.discriminator)] {
        for (what, x, y) in [("parameters", a.parameters, b.parameters), ("running statistics", a.state, b.state)]
        where y.count > 0 {
            let scale = y.values.map(abs).max()!
            let worst = zip(x.values, y.values).map { abs($0 - $1) }.max()!
            check.expect(worst <= tolerance * scale,
                         "\(what): largest difference \(worst) exceeds \(tolerance) of the largest value \(scale)")
            if ProcessInfo.processInfo.environment["GANTRY_SHOW_DIFFERENCES"] != nil, comm.rank == 0 {
                printLine("    \(what): largest difference \(worst / scale) of the largest value")
            }
        }
    }
}

/// `count` images of uniform noise in [-1, 1], a pure function of `seed`.
func syntheticImages(count: Int, pixels: Int, seed: UInt64) -> [Float] {
    var x = [Float](repeating: 0, count: count * pixels)
    RandomStream(seed: seed, 0xDA7A).fillUniform(&x, count: x.count, low: -1, high: 1)
    return x
}

/// Moves one discriminator parameter of `trainer` by one ulp: a replica that computed something else.
private func nudge(_ trainer: GANTrainer) {
    let values = trainer.models.discriminator.parameters.values
    values[values.count / 2] = values[values.count / 2].nextUp
}

/// An output that nudges its rank's replica when it hears the interval after step 1.
private final class NudgeAfterFirstStep: TrainingOutput {
    let rank: Int
    var trainer: GANTrainer?
    init(onRank rank: Int) { self.rank = rank }
    func record(_ event: TrainingEvent) throws {
        guard case let .interval(summary) = event, summary.step == 1 else { return }
        if let trainer, trainer.communicator.rank == rank { nudge(trainer) }
    }
}

/// The same synthetic batch every step, different on each rank.
final class SyntheticData: TrainingData {
    let batchesPerEpoch = 1000
    let images: [Float]
    init(batchSize: Int, pixels: Int, rank: Int) {
        images = syntheticImages(count: batchSize, pixels: pixels, seed: UInt64(300 + rank))
    }
    func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: images, count: images.count)
    }
}

/// A 6-step run of `c` on synthetic data (different on each rank) in a fresh folder, with
/// `edit`'s options, handed to `body` and removed after.
private func withRun(_ check: CheckContext, _ c: GANConfiguration, outputs: [TrainingOutput] = [],
                     stopRequest: @escaping () -> Int32? = { nil }, _ edit: (inout TrainingOptions) -> Void,
                     body: (TrainingRun, TrainingOptions) throws -> Void) throws {
    let comm = check.comm
    let folder = try temporaryRunFolder(comm)
    defer { if comm.isRoot { try? FileManager.default.removeItem(atPath: folder) } }
    var options = TrainingOptions(outputDirectory: folder)
    options.length = .steps(6)
    edit(&options)
    let run = try TrainingRun(configuration: c, options: options,
                              data: SyntheticData(batchSize: c.batchSize, pixels: c.pixelCount, rank: comm.rank),
                              communicator: comm, outputs: outputs, stopRequest: stopRequest)
    try body(run, options)
}

/// A fresh folder for a run's outputs, named by rank 0 and the same on every rank.
func temporaryRunFolder(_ comm: any Communicator) throws -> String {
    let mine = FileManager.default.temporaryDirectory.path + "/gantry-mpi-check-\(getpid())-\(UInt64.random(in: 0 ... .max))"
    return try comm.broadcast(mine, root: 0)
}
