import Distributed
import FileFormats
import Foundation
import Kernels
import XCTest
@testable import GAN

/// A small synthetic training set held in memory, in a fixed order per epoch.
final class SyntheticData: TrainingData {
    let images: [Float]
    let batch: Int
    let batchesPerEpoch: Int

    init(count: Int, batch: Int, seed: UInt64 = 9) {
        var x = [Float](repeating: 0, count: count * 784)
        RandomStream(seed: seed).fillUniform(&x, count: x.count, low: -1, high: 1)
        images = x
        self.batch = batch
        batchesPerEpoch = count / batch
    }

    func copyBatch(epoch: Int, index: Int, into destination: UnsafeMutablePointer<Float>) {
        // Epochs visit batches in a rotated order, so that order matters to the result.
        let b = (index + epoch) % batchesPerEpoch
        images.withUnsafeBufferPointer { destination.update(from: $0.baseAddress! + b * batch * 784, count: batch * 784) }
    }
}

final class CheckpointTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "gantry-checkpoint-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func configuration(_ model: ModelKind = .mlp) -> GANConfiguration {
        var c = GANConfiguration.defaults(for: model)
        c.batchSize = 8
        c.seed = 3
        return c
    }

    func run(_ out: String, steps: Int, resume: ResumeSource? = nil, checkpointEvery: Int = 0,
             model: ModelKind = .mlp) throws -> TrainingRun {
        var options = TrainingOptions(outputDirectory: out)
        options.length = .steps(steps)
        options.logEvery = 1
        options.sampleEvery = 0
        options.checkpointEvery = checkpointEvery
        options.resume = try resume.map {
            try ResumePlan.make($0, directory: options.checkpointDirectory, request: ConfigurationRequest(configuration(model)),
                                communicator: SingleProcessCommunicator())
        }
        options.sampleCount = 4
        let run = try TrainingRun(configuration: configuration(model), options: options,
                                  data: SyntheticData(count: 40, batch: 8), communicator: SingleProcessCommunicator())
        try run.run()
        return run
    }

    /// (step, d_loss, g_loss) of every metrics record.
    func losses(_ out: String) throws -> [String] {
        try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return "\(object["step"]!) \(object["d_loss"]!) \(object["g_loss"]!)"
        }
    }

    func testRoundTripRestoresEveryParameterAndOptimizerState() throws {
        let trained = try run(directory + "/a", steps: 3)
        let path = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 3)
        XCTAssertEqual(Checkpoint.latest(in: directory + "/a/checkpoints"), path)
        XCTAssertEqual(try Checkpoint.configuration(at: path), configuration())

        let fresh = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        XCTAssertEqual(try Checkpoint.restore(fresh, from: path), 3)
        for ((_, a, oa), (_, b, ob)) in zip(trained.trainer.namedNetworks, fresh.namedNetworks) {
            XCTAssertEqual(Array(a.parameters.values), Array(b.parameters.values))
            for (sa, sb) in zip(oa.state, ob.state) { XCTAssertEqual(Array(sa.values), Array(sb.values), sa.name) }
            XCTAssertEqual(oa.stepCount, ob.stepCount)
            XCTAssertEqual(ob.stepCount, 3)
        }
        // Per-layer tensors are named and shaped for other tools to read.
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(try file.info(named: "generator.2.kernel").shape, [128, 784])
        XCTAssertEqual(try file.info(named: "discriminator.2.bias").shape, [1])
    }

    func testDCGANRoundTripKeepsBatchNormRunningStatistics() throws {
        let trained = try run(directory + "/d", steps: 2, model: .dcgan)
        let path = directory + "/d/checkpoints/" + Checkpoint.fileName(step: 2)
        let fresh = GANTrainer(configuration: configuration(.dcgan), communicator: SingleProcessCommunicator())
        XCTAssertEqual(try Checkpoint.restore(fresh, from: path), 2)
        let G = trained.trainer.models.generator
        XCTAssertEqual(G.state.entries.count, 6, "three batch norms, each a moving mean and variance")
        // Two training steps moved the running statistics off their initial 0 and 1.
        XCTAssertNotEqual(G.state.values[G.state.entry(named: "1.moving_mean")!.offset], 0)
        XCTAssertEqual(Array(fresh.models.generator.state.values), Array(G.state.values))
        XCTAssertEqual(Array(fresh.models.generator.parameters.values), Array(G.parameters.values))
        XCTAssertEqual(Array(fresh.models.discriminator.parameters.values),
                       Array(trained.trainer.models.discriminator.parameters.values))
        XCTAssertEqual(try SafetensorsFile(path: path).info(named: "generator.5.moving_variance").shape, [128])
        // Sampling uses those statistics (inference mode): same images from both.
        var a = [Float](repeating: 0, count: 3 * 784), b = a
        trained.trainer.generate(count: 3, stream: RandomStream(seed: 1), into: &a)
        fresh.generate(count: 3, stream: RandomStream(seed: 1), into: &b)
        XCTAssertEqual(a, b)
    }

    func testResumeContinuesWithTheLossesOfAnUninterruptedRun() throws {
        let whole = try run(directory + "/whole", steps: 12)
        _ = try run(directory + "/split", steps: 5, checkpointEvery: 5)
        let resumed = try run(directory + "/split", steps: 12, resume: .latest)
        XCTAssertEqual(try losses(directory + "/split"), try losses(directory + "/whole"))
        XCTAssertEqual(Array(resumed.trainer.models.generator.parameters.values),
                       Array(whole.trainer.models.generator.parameters.values))
        XCTAssertEqual(Array(resumed.trainer.models.discriminator.parameters.values),
                       Array(whole.trainer.models.discriminator.parameters.values))
    }

    func testIncompatibleAndForeignCheckpointsAreRefusedWithTheirReason() throws {
        _ = try run(directory + "/a", steps: 1)
        let path = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 1)
        var other = configuration()
        other.latentDimension = 64
        let trainer = GANTrainer(configuration: other, communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try Checkpoint.restore(trainer, from: path)) { error in
            XCTAssertEqual("\(error)", "checkpoint \(path) was written with latent dimension 100, but this run asks for 64; "
                + "pass the same latent dimension as the run that wrote it, or start a new run in another --out folder")
        }
        let foreign = directory + "/foreign.safetensors"
        try Safetensors.write(path: foreign, tensors: [(name: "w", shape: [2], values: [1, 2])])
        XCTAssertThrowsError(try Checkpoint.configuration(at: foreign)) { error in
            XCTAssertEqual(error as? CheckpointError, .notAGantryCheckpoint(path: foreign, missing: "gantry.configuration"))
        }
        XCTAssertThrowsError(try run(directory + "/empty", steps: 2, resume: .latest)) { error in
            XCTAssertEqual(error as? CheckpointError, .noCheckpointIn(directory: directory + "/empty/checkpoints"))
        }
    }

    /// Each bad checkpoint is refused by `restore` with one line naming the file, the problem
    /// and what to do. (Also: the tests around this one; the file format's own cases in
    /// SafetensorsTests.)
    func testEachBadCheckpointHasItsOwnMessage() throws {
        _ = try run(directory + "/a", steps: 1)
        let good = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 1)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let names = try SafetensorsFile(path: good).tensors.map(\.name)
        func write(_ bytes: [UInt8], _ name: String) throws -> String {
            try Data(bytes).write(to: URL(fileURLWithPath: directory + "/" + name))
            return directory + "/" + name
        }
        func assertRefused(_ path: String, _ message: String, configuration: GANConfiguration? = nil, line: UInt = #line) {
            let trainer = GANTrainer(configuration: configuration ?? self.configuration(), communicator: SingleProcessCommunicator())
            XCTAssertThrowsError(try Checkpoint.restore(trainer, from: path), line: line) { error in
                XCTAssertEqual("\(error)", message, line: line)
                XCTAssertFalse("\(error)".contains("\n"), "error spans several lines", line: line)
            }
        }

        // Not safetensors: the first 8 bytes, read as the header length, give a huge one.
        var path = try write(Array("not a checkpoint".utf8), "notes.safetensors")
        assertRefused(path, "checkpoint \(path) declares a 7521891404167278446-byte header but the file has only 16 bytes; "
            + "it is truncated or not a safetensors file, use another checkpoint")
        // Cut inside the data: the last tensor runs past the end.
        path = try write(Array(bytes.dropLast(4)), "cut.safetensors")
        let last = try SafetensorsFile(path: good).info(named: names.last!)
        assertRefused(path, "checkpoint \(path): tensor \(names.last!) has data offsets [\(last.byteRange.lowerBound), "
            + "\(last.byteRange.upperBound)] outside the \(last.byteRange.upperBound - 4)-byte data section; "
            + "the file is truncated or corrupt, use another checkpoint")
        // Cut inside the header: its length runs past the end.
        path = try write(Array(bytes.prefix(100)), "short.safetensors")
        assertRefused(path, "checkpoint \(path) declares a \(headerLength)-byte header but the file has only 100 bytes; "
            + "it is truncated or not a safetensors file, use another checkpoint")
        // Header JSON damaged.
        var damaged = bytes
        damaged[8] = UInt8(ascii: "(")
        path = try write(damaged, "json.safetensors")
        assertRefused(path, "checkpoint \(path): the \(headerLength)-byte header is not valid JSON; "
            + "the file is corrupt or not a safetensors file, use another checkpoint")

        // A tensor missing; a tensor of another size (another shape of the same size: below).
        path = try write(bytes, "missing.safetensors")
        try rewrite(path) { $0.removeAll { $0.name == "discriminator.2.bias" } }
        assertRefused(path, "checkpoint \(path) has no tensor discriminator.2.bias (it has: "
            + names.filter { $0 != "discriminator.2.bias" }.joined(separator: ", ")
            + "); the checkpoint was written for another model configuration")
        path = try write(bytes, "resized.safetensors")
        try rewrite(path) { tensors in
            tensors = tensors.map { $0.name == "discriminator.2.bias" ? ($0.name, [2], [0, 0]) : $0 }
        }
        assertRefused(path, "checkpoint \(path): tensor discriminator.2.bias has 2 values, the model expects 1; "
            + "the checkpoint was written for another model configuration")

        // Tensors the model does not have, one named with a line break: the line stays one.
        path = try write(bytes, "extra.safetensors")
        try rewrite(path) { $0 += [("generator.9.kernel", [2], [0, 0]), ("odd\nname", [1], [0])] }
        assertRefused(path, "checkpoint \(path) holds tensors this model does not have (generator.9.kernel, odd\\nname); "
            + "the checkpoint was written for another model configuration or program")

        // Another model's checkpoint, and one of another image size.
        let dcgan = GANTrainer(configuration: configuration(.dcgan), communicator: SingleProcessCommunicator())
        try dcgan.initializeParameters()
        path = directory + "/dcgan.safetensors"
        try Checkpoint.save(dcgan, step: 1, to: path)
        assertRefused(path, "checkpoint \(path) was written with --model dcgan, but this run asks for mlp; "
            + "pass the same --model as the run that wrote it, or start a new run in another --out folder")
        var larger = configuration()
        (larger.imageHeight, larger.imageWidth) = (32, 32)
        assertRefused(good, "checkpoint \(good) was written with image size 28x28, but this run asks for 32x32; "
            + "pass the same image size as the run that wrote it, or start a new run in another --out folder",
                      configuration: larger)
    }

    /// One byte flipped in one tensor's data: the file is refused, naming that tensor.
    func testADamagedTensorIsRefusedByName() throws {
        _ = try run(directory + "/a", steps: 1)
        let path = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 1)
        let file = try SafetensorsFile(path: path)
        let tensor = "discriminator.0.kernel"
        let info = try file.info(named: tensor)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let flipped = 8 + headerLength + info.byteRange.lowerBound + info.byteRange.count / 2
        bytes[flipped] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let trainer = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        XCTAssertThrowsError(try Checkpoint.restore(trainer, from: path)) { error in
            guard case let .checksumMismatch(errorPath, name, stored, computed) = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(errorPath, path)
            XCTAssertEqual(name, tensor)
            XCTAssertEqual(stored, file.metadata["gantry.crc32.\(tensor)"], "the CRC-32 the file records")
            let damaged = try? SafetensorsFile(path: path).tensor(named: tensor).values
            XCTAssertEqual(computed, damaged?.withUnsafeBytes { CRC32.hex($0) }, "the CRC-32 of the damaged bytes")
            XCTAssertNotEqual(stored, computed)
            XCTAssertEqual("\(error)", "checkpoint \(path) is damaged: tensor \(tensor) has CRC-32 \(computed), but the file "
                + "records \(stored); resume from an earlier checkpoint of the run")
        }
    }

    /// A state holding an infinity is not written (and an earlier file of that name stays as it was).
    func testANonFiniteStateIsNotWritten() throws {
        let trainer = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        let path = directory + "/step-00000001.safetensors"
        try Checkpoint.save(trainer, step: 1, to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        trainer.models.generator.parameters.values[3] = .infinity
        XCTAssertThrowsError(try Checkpoint.save(trainer, step: 1, to: path)) { error in
            XCTAssertEqual(error as? CheckpointError, .nonFinite(path: path, tensor: "generator.0.kernel"))
            XCTAssertEqual("\(error)", "not writing checkpoint \(path): tensor generator.0.kernel holds a NaN or an infinity "
                + "(training diverged); the run stops, its earlier checkpoints are intact; lower --lr, or resume from one of them")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), good)
    }

    /// The same state gives the same bytes (the configuration's JSON keys in order).
    func testTheSameStateWritesTheSameBytes() throws {
        _ = try run(directory + "/a", steps: 2)
        _ = try run(directory + "/b", steps: 2)
        let name = "/checkpoints/" + Checkpoint.fileName(step: 2)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: directory + "/a" + name)),
                       try Data(contentsOf: URL(fileURLWithPath: directory + "/b" + name)))
    }

    /// `keep`: after each write only the newest checkpoints stay (default 5), and resume takes
    /// the newest.
    func testKeepLeavesTheNewestCheckpoints() throws {
        let out = directory + "/keep"
        var options = TrainingOptions(outputDirectory: out)
        options.length = .steps(7)
        options.sampleEvery = 0
        options.checkpointEvery = 1
        options.keep = 3
        try TrainingRun(configuration: configuration(), options: options, data: SyntheticData(count: 40, batch: 8),
                        communicator: SingleProcessCommunicator()).run()
        XCTAssertEqual(Checkpoint.all(in: options.checkpointDirectory),
                       [5, 6, 7].map { options.checkpointDirectory + "/" + Checkpoint.fileName(step: $0) })
        XCTAssertEqual(TrainingOptions(outputDirectory: out).keep, 5)
    }

    /// `--resume` alone passes over a damaged newest checkpoint to the one before, saying why;
    /// with every one damaged it stops with one line naming each.
    func testResumeTakesTheNewestCheckpointThatLoads() throws {
        let out = directory + "/r"
        _ = try run(out, steps: 2, checkpointEvery: 1)
        let newest = out + "/checkpoints/" + Checkpoint.fileName(step: 2)
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: newest))
        let request = ConfigurationRequest(configuration())
        let plan = try ResumePlan.find(.latest, directory: out + "/checkpoints", request: request, ranks: 1)
        let (path, skipped) = (plan.path, plan.skipped)
        XCTAssertEqual(path, out + "/checkpoints/" + Checkpoint.fileName(step: 1))
        XCTAssertEqual(plan.configuration, configuration())
        XCTAssertEqual(plan.notes, [])
        XCTAssertEqual(skipped.map(\.path), [newest])
        XCTAssert(skipped[0].reason.contains("safetensors"), skipped[0].reason)

        try Data("not one either".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ResumePlan.find(.latest, directory: out + "/checkpoints", request: request, ranks: 1)) { error in
            guard case let .noLoadableCheckpointIn(folder, skipped) = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(folder, out + "/checkpoints")
            XCTAssertEqual(skipped.map(\.path), [newest, path])
            XCTAssert("\(error)".hasPrefix("--resume found 2 checkpoint(s) in \(folder), and none loads (step-00000002.safetensors: "),
                      "\(error)")
        }
    }

    /// A resumed run takes its checkpoint's settings: flags not given are the checkpoint's (not
    /// the defaults), a given one that differs is refused by name, --lr changes with a warning,
    /// another rank count is noted.
    func testResumeTakesTheCheckpointsSettings() throws {
        let out = directory + "/settings"
        var written = configuration(.dcgan)
        written.generatorOptimizer.beta1 = 0.9
        written.discriminatorOptimizer.beta1 = 0.9
        written.seed = 11
        written.batchSize = 2
        let trainer = GANTrainer(configuration: written, communicator: SingleProcessCommunicator())
        try trainer.initializeParameters()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let path = out + "/" + Checkpoint.fileName(step: 4)
        try Checkpoint.save(trainer, step: 4, to: path)

        // Nothing given: the checkpoint's settings, β₁ 0.9 among them (the default would be 0.5).
        let plan = try ResumePlan.find(.latest, directory: out, request: ConfigurationRequest(), ranks: 1)
        XCTAssertEqual(plan.configuration, written)
        XCTAssertEqual(plan.notes, [])
        // The same values given: accepted.
        XCTAssertEqual(try ResumePlan.find(.file(path), directory: out, request: ConfigurationRequest(written), ranks: 1).configuration,
                       written)
        // Each setting that may not change, changed: refused, naming the flag.
        let changes: [(String, String, String, (inout ConfigurationRequest) -> Void)] = [
            ("--model", "dcgan", "mlp", { $0.model = .mlp }),
            ("--batch-size", "2", "64", { $0.batchSize = 64 }),
            ("--beta1", "0.9", "0.5", { $0.beta1 = 0.5 }),
            ("--beta2", "0.999", "0.99", { $0.beta2 = 0.99 }),
            ("--seed", "11", "0", { $0.seed = 0 }),
            ("--label-smoothing", "0.0", "0.1", { $0.labelSmoothing = 0.1 }),
            ("--noise", "normal", "uniform", { $0.noise = .uniform }),
            ("--update-scheme", "simultaneous", "alternating", { $0.updateScheme = .alternating }),
            ("--dropout", "0.3", "0.0", { $0.dropoutRate = 0 }),
            ("--sync-bn", "false", "true", { $0.synchronizedBatchNorm = true }),
        ]
        for (flag, stored, requested, change) in changes {
            var request = ConfigurationRequest()
            change(&request)
            XCTAssertThrowsError(try ResumePlan.find(.latest, directory: out, request: request, ranks: 1)) { error in
                XCTAssertEqual(error as? CheckpointError,
                               .settingChanged(path: path, flag: flag, stored: stored, requested: requested), flag)
            }
        }
        var beta = ConfigurationRequest()
        beta.beta1 = 0.5
        XCTAssertThrowsError(try ResumePlan.find(.latest, directory: out, request: beta, ranks: 1)) { error in
            XCTAssertEqual("\(error)", "--beta1 0.5 differs from the checkpoint's 0.9 (\(path)): a resumed run keeps its model and "
                + "optimizer settings (only --lr, the length, the outputs and the intervals may change); drop --beta1, "
                + "or start a new run in another --out folder")
        }
        // The learning rate may change, with a warning; another rank count is noted.
        var faster = ConfigurationRequest()
        faster.learningRate = 2e-4
        let changed = try ResumePlan.find(.latest, directory: out, request: faster, ranks: 4)
        XCTAssertEqual(changed.configuration.generatorOptimizer.learningRate, 2e-4)
        XCTAssertEqual(changed.configuration.discriminatorOptimizer.learningRate, 2e-4)
        XCTAssertEqual(changed.notes, [.learningRateChanged(from: 1e-4, to: 2e-4), .rankCountChanged(from: 1, to: 4, batchSize: 2)])
        XCTAssertEqual(changed.notes.map(\.description), [
            "warning: --lr 0.0002 replaces the checkpoint's learning rate 0.0001 for both networks from here",
            "resuming on 4 ranks from a checkpoint of 1: each rank's shard, so the data order, changes from here, and the "
                + "global batch is 8 (was 2); the run is no longer bit-identical to an uninterrupted one",
        ])
        // The batch per rank may change where it keeps the global batch (1 x 2 = 2 x 1), as
        // launch/train --restarts asks on fewer hosts; not otherwise.
        var split = ConfigurationRequest()
        split.batchSize = 1
        let kept = try ResumePlan.find(.latest, directory: out, request: split, ranks: 2)
        XCTAssertEqual(kept.configuration.batchSize, 1)
        XCTAssertEqual(kept.notes.map(\.description), [
            "resuming on 2 ranks x batch 1 from a checkpoint of 1 x batch 2: the global batch stays 2, but each rank's shard, "
                + "so the data order, changes from here; the run is no longer bit-identical to an uninterrupted one",
        ])
        XCTAssertThrowsError(try ResumePlan.find(.latest, directory: out, request: split, ranks: 3)) { error in
            XCTAssertEqual(error as? CheckpointError, .settingChanged(path: path, flag: "--batch-size", stored: "2", requested: "1"))
        }
        // Through the communicator: the same plan.
        XCTAssertEqual(try ResumePlan.make(.latest, directory: out, request: faster, communicator: SingleProcessCommunicator()),
                       try ResumePlan.find(.latest, directory: out, request: faster, ranks: 1))
    }

    /// Rewrites the checkpoint at `path` with `edit` applied to its tensors (metadata kept).
    func rewrite(_ path: String, _ edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void) throws {
        let file = try SafetensorsFile(path: path)
        var tensors = try file.tensors.map { info in (name: info.name, shape: info.shape, values: try file.tensor(named: info.name).values) }
        edit(&tensors)
        try Safetensors.write(path: path, tensors: tensors, metadata: file.metadata)
    }

    /// A tensor of another shape (the same number of values), and a tensor the model lacks:
    /// each refused by name.
    func testWrongShapesAndExtraTensorsAreRefusedByName() throws {
        _ = try run(directory + "/a", steps: 1)
        let path = directory + "/a/checkpoints/" + Checkpoint.fileName(step: 1)
        let trainer = GANTrainer(configuration: configuration(), communicator: SingleProcessCommunicator())
        let original = try Data(contentsOf: URL(fileURLWithPath: path))

        try rewrite(path) { tensors in
            let i = tensors.firstIndex { $0.name == "generator.0.kernel" }!
            tensors[i].shape = tensors[i].shape.reversed()
        }
        XCTAssertThrowsError(try Checkpoint.restore(trainer, from: path)) { error in
            XCTAssertEqual("\(error)", "checkpoint \(path): tensor generator.0.kernel has shape [128, 100], the model expects "
                + "[100, 128]; the checkpoint was written for another model configuration")
        }

        try original.write(to: URL(fileURLWithPath: path))
        try rewrite(path) { $0.append((name: "generator.9.kernel", shape: [2], values: [1, 2])) }
        XCTAssertThrowsError(try Checkpoint.restore(trainer, from: path)) { error in
            XCTAssertEqual(error as? CheckpointError, .extraTensors(path: path, names: ["generator.9.kernel"]))
            XCTAssertEqual("\(error)", "checkpoint \(path) holds tensors this model does not have (generator.9.kernel); "
                + "the checkpoint was written for another model configuration or program")
        }
    }

    /// Images of another size than the model's: one line naming the file and both sizes.
    func testImagesOfAnotherSizeAreRefused() throws {
        let folder = directory + "/small"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        func idx(_ magic: UInt32, _ dimensions: [UInt32], _ bytes: Int) -> Data {
            var data = Data()
            for word in [magic] + dimensions { withUnsafeBytes(of: word.bigEndian) { data.append(contentsOf: $0) } }
            return data + Data(repeating: 1, count: bytes)
        }
        try idx(0x803, [4, 14, 14], 4 * 196).write(to: URL(fileURLWithPath: folder + "/train-images-idx3-ubyte"))
        try idx(0x801, [4], 4).write(to: URL(fileURLWithPath: folder + "/train-labels-idx1-ubyte"))
        var c = configuration()
        c.batchSize = 2
        XCTAssertThrowsError(try MNISTShardData(directory: folder, configuration: c, rank: 0, ranks: 1)) { error in
            XCTAssertEqual("\(error)", "\(folder)/train-images-idx3-ubyte holds 14x14 images, but the model is built for 28x28: "
                + "pass a --data folder of 28x28 images (MNIST, Fashion-MNIST)")
        }
    }
}
