import FileFormats
import Foundation
import NN
import Optim

/// Why a checkpoint cannot be used; `description` is one line with the fix.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case notAGantryCheckpoint(path: String, missing: String)
    case incompatible(path: String, field: String, stored: String, requested: String)
    /// A resumed run was asked for another setting than its checkpoint's (one that may not change mid-run).
    case settingChanged(path: String, flag: String, stored: String, requested: String)
    case noCheckpointIn(directory: String)
    case checksumMismatch(path: String, tensor: String, stored: String, computed: String)
    case noLoadableCheckpointIn(directory: String, skipped: [SkippedCheckpoint])
    /// A tensor of the file has another shape than the model's (the same number of values).
    case tensorShape(path: String, tensor: String, stored: [Int], expected: [Int])
    /// The file holds tensors the model has no place for.
    case extraTensors(path: String, names: [String])
    /// Saving refused: tensor `tensor` holds a NaN or an infinity (the run diverged).
    case nonFinite(path: String, tensor: String)

    public var description: String {
        switch self {
        case let .notAGantryCheckpoint(path, missing):
            return "checkpoint \(path) has no \(missing) metadata: it was not written by gantry train; "
                + "pass a file from a run's checkpoints/ folder"
        case let .incompatible(path, field, stored, requested):
            return "checkpoint \(path) was written with \(field) \(stored), but this run asks for \(requested); "
                + "pass the same \(field) as the run that wrote it, or start a new run in another --out folder"
        case let .settingChanged(path, flag, stored, requested):
            return "\(flag) \(requested) differs from the checkpoint's \(stored) (\(path)): a resumed run keeps its model and "
                + "optimizer settings (only --lr, the length, the outputs and the intervals may change); drop \(flag), "
                + "or start a new run in another --out folder"
        case let .checksumMismatch(path, tensor, stored, computed):
            return "checkpoint \(path) is damaged: tensor \(tensor) has CRC-32 \(computed), but the file records \(stored); "
                + "resume from an earlier checkpoint of the run"
        case let .noLoadableCheckpointIn(directory, skipped):
            return "--resume found \(skipped.count) checkpoint(s) in \(directory), and none loads ("
                + skipped.map { "\(($0.path as NSString).lastPathComponent): \($0.reason)" }.joined(separator: "; ")
                + "); pass a good checkpoint with --resume FILE, or drop --resume to start a new run"
        case let .tensorShape(path, tensor, stored, expected):
            return "checkpoint \(path): tensor \(tensor) has shape \(stored), the model expects \(expected); "
                + "the checkpoint was written for another model configuration"
        case let .extraTensors(path, names):
            return "checkpoint \(path) holds tensors this model does not have ("
                + names.map(escapingLineBreaks).joined(separator: ", ")
                + "); the checkpoint was written for another model configuration or program"
        case let .nonFinite(path, tensor):
            return "not writing checkpoint \(path): tensor \(tensor) holds a NaN or an infinity (training diverged); "
                + "the run stops, its earlier checkpoints are intact; lower --lr, or resume from one of them"
        case let .noCheckpointIn(directory):
            return "--resume found no checkpoint in \(directory): no step-*.safetensors files; "
                + "pass a checkpoint file with --resume FILE, or drop --resume to start a new run"
        }
    }
}

/// A training run's full state in one safetensors file: both networks' parameters (one tensor
/// per layer parameter, named `generator.0.kernel`, ...), both Adam states (flat `m` and `v`
/// tensors and the step count), the global step, and the configuration as JSON metadata.
///
/// Everything else a resumed run needs is derived from these: the data order from
/// (seed, epoch, rank), the noise from (seed, step). So a resumed run on the same number of
/// ranks computes exactly what the uninterrupted run would have.
public enum Checkpoint {
    static let formatKey = "gantry.format", configurationKey = "gantry.configuration", stepKey = "gantry.step"
    /// 2: every tensor's CRC-32 in the metadata (`gantry.crc32.NAME`), checked on load.
    static let formatVersion = "2"
    static func checksumKey(_ tensor: String) -> String { "gantry.crc32." + tensor }
    /// The name of the averaged generator's tensors ("generator_ema.0.kernel"), when the run keeps one.
    static let averagedGeneratorName = "generator_ema"

    /// The name of the generator `gantry sample` and `gantry eval` draw from in a checkpoint of `c`.
    static func sampledGeneratorName(_ c: GANConfiguration) -> String {
        c.averagesGenerator ? averagedGeneratorName : "generator"
    }

    /// File name of the checkpoint written after `step` steps (sorts by step).
    public static func fileName(step: Int) -> String {
        "step-" + String(repeating: "0", count: max(0, 8 - String(step).count)) + String(step) + ".safetensors"
    }

    /// Writes `trainer`'s state after `step` steps to `path`, atomically; refuses a state that
    /// holds a NaN or an infinity (nothing is written).
    public static func save(_ trainer: GANTrainer, step: Int, to path: String) throws {
        var tensors: [Safetensors.Tensor] = []
        var metadata: [String: String] = [
            formatKey: formatVersion,
            stepKey: String(step),
            configurationKey: String(decoding: try sortedEncoder.encode(trainer.configuration), as: UTF8.self),
            "gantry.ranks": String(trainer.communicator.size),
        ]
        // Parameters and state (batch norm's running statistics) share one namespace:
        // "generator.1.gamma", "generator.1.moving_mean".
        func append(_ network: Sequential, named name: String) {
            for store in network.stores {
                let values = UnsafeBufferPointer(store.values)
                for entry in store.entries {
                    tensors.append(.init(name: "\(name).\(entry.name)", shape: entry.shape,
                                         values: UnsafeBufferPointer(rebasing: values[entry.offset ..< entry.offset + entry.count])))
                }
            }
        }
        if let averaged = trainer.averagedGenerator { append(averaged, named: averagedGeneratorName) }
        for (name, network, optimizer) in trainer.namedNetworks {
            append(network, named: name)
            // "generator.adam.m", "generator.adam.v" (or "generator.rmsprop.s"), and the step count.
            for (stateName, values) in optimizer.state {
                tensors.append(.init(name: "\(name).\(stateName)", shape: [optimizer.count], values: UnsafeBufferPointer(values)))
            }
            metadata[stepCountKey(name, optimizer)] = String(optimizer.stepCount)
        }
        for tensor in tensors {
            guard tensor.values.allSatisfy(\.isFinite) else { throw CheckpointError.nonFinite(path: path, tensor: tensor.name) }
            metadata[checksumKey(tensor.name)] = CRC32.hex(UnsafeRawBufferPointer(tensor.values))
        }
        try Safetensors.write(path: path, tensors: tensors, metadata: metadata)
    }

    /// Keys in order, so that the same state gives the same bytes.
    private static var sortedEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return encoder
    }

    /// Copies tensor `name` (of `shape`) into `destination` and checks its CRC-32 against the file's record
    /// (required from format 2; files of format 1 have none).
    static func load(_ name: String, shape: [Int], from file: SafetensorsFile,
                     into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try file.info(named: name)
        if info.count == destination.count, info.shape != shape {
            throw CheckpointError.tensorShape(path: file.path, tensor: name, stored: info.shape, expected: shape)
        }
        try file.copyTensor(named: name, into: destination)
        let required = (file.metadata[formatKey].flatMap(Int.init) ?? 1) >= 2
        guard let stored = file.metadata[checksumKey(name)] else {
            if required { throw CheckpointError.notAGantryCheckpoint(path: file.path, missing: checksumKey(name)) }
            return
        }
        let computed = CRC32.hex(UnsafeRawBufferPointer(destination))
        guard computed == stored else {
            throw CheckpointError.checksumMismatch(path: file.path, tensor: name, stored: stored, computed: computed)
        }
    }

    /// Loads `network`'s parameters and state, stored under `name` ("generator.0.kernel"), from
    /// `file`, each tensor's checksum checked; returns the tensor names read.
    static func load(_ network: Sequential, named name: String, from file: SafetensorsFile) throws -> Set<String> {
        var names: Set<String> = []
        for store in network.stores {
            let values = store.values
            for entry in store.entries {
                try load("\(name).\(entry.name)", shape: entry.shape, from: file,
                         into: UnsafeMutableBufferPointer(rebasing: values[entry.offset ..< entry.offset + entry.count]))
                names.insert("\(name).\(entry.name)")
            }
        }
        return names
    }

    /// The number of ranks of the run that wrote the checkpoint at `path` (nil in files before it was recorded).
    public static func ranks(at path: String) throws -> Int? {
        try SafetensorsFile(path: path).metadata["gantry.ranks"].flatMap(Int.init)
    }

    /// Reads the configuration stored in a checkpoint (to rebuild its models before `restore`).
    public static func configuration(at path: String) throws -> GANConfiguration {
        try configuration(of: try SafetensorsFile(path: path))
    }

    static func configuration(of file: SafetensorsFile) throws -> GANConfiguration {
        guard file.metadata[formatKey] != nil, let json = file.metadata[configurationKey] else {
            throw CheckpointError.notAGantryCheckpoint(path: file.path, missing: configurationKey)
        }
        do {
            return try JSONDecoder().decode(GANConfiguration.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError.notAGantryCheckpoint(path: file.path, missing: "a readable \(configurationKey)")
        }
    }

    /// Loads `path` into `trainer` (this rank only) and returns the step it was written at.
    /// Fails, changing nothing that matters, if the architecture differs from the trainer's.
    public static func restore(_ trainer: GANTrainer, from path: String) throws -> Int {
        let file = try SafetensorsFile(path: path)
        let stored = try configuration(of: file)
        try checkCompatible(stored, trainer.configuration, path: path)
        guard let stepText = file.metadata[stepKey], let step = Int(stepText) else {
            throw CheckpointError.notAGantryCheckpoint(path: path, missing: stepKey)
        }
        var expected: Set<String> = []
        if let averaged = trainer.averagedGenerator {
            expected.formUnion(try load(averaged, named: averagedGeneratorName, from: file))
        }
        for (name, network, optimizer) in trainer.namedNetworks {
            expected.formUnion(try load(network, named: name, from: file))
            for (stateName, values) in optimizer.state {
                try load("\(name).\(stateName)", shape: [optimizer.count], from: file, into: values)
                expected.insert("\(name).\(stateName)")
            }
            let key = stepCountKey(name, optimizer)
            guard let steps = file.metadata[key].flatMap(Int.init) else {
                throw CheckpointError.notAGantryCheckpoint(path: path, missing: key)
            }
            optimizer.stepCount = steps
        }
        let extra = file.tensors.map(\.name).filter { !expected.contains($0) }
        guard extra.isEmpty else { throw CheckpointError.extraTensors(path: path, names: extra) }
        return step
    }

    /// The architecture and data layout must match; optimizer settings may change on resume.
    static func checkCompatible(_ stored: GANConfiguration, _ requested: GANConfiguration, path: String) throws {
        func check<T: Equatable>(_ field: String, _ a: T, _ b: T) throws {
            if a != b { throw CheckpointError.incompatible(path: path, field: field, stored: "\(a)", requested: "\(b)") }
        }
        try check("--model", stored.model.rawValue, requested.model.rawValue)
        try check("latent dimension", stored.latentDimension, requested.latentDimension)
        try check("image size", "\(stored.imageHeight)x\(stored.imageWidth)", "\(requested.imageHeight)x\(requested.imageWidth)")
    }

    /// The checkpoint with the highest step in `directory`, or nil if there is none.
    public static func latest(in directory: String) -> String? {
        all(in: directory).last
    }

    /// The checkpoint files in `directory`, oldest first (their names sort by step).
    public static func all(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted().map { directory + "/" + $0 }
    }

    /// Deletes all but the newest `keep` checkpoints of `directory`; returns the paths deleted.
    @discardableResult
    public static func prune(_ directory: String, keep: Int) throws -> [String] {
        precondition(keep >= 1, "keep at least the newest checkpoint")
        let old = all(in: directory).dropLast(keep)
        for path in old {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw OutputError.cannotRemove(path: path, reason: (error as NSError).localizedDescription)
            }
        }
        return Array(old)
    }
}

/// The metadata key of a network's optimizer's update count: "gantry.generator.adam.steps".
private func stepCountKey(_ network: String, _ optimizer: Optimizer) -> String {
    "gantry.\(network).\(optimizer.config.kind.rawValue).steps"
}

extension GANTrainer {
    /// The two networks with their optimizers, under the names checkpoints use.
    var namedNetworks: [(String, Sequential, Optimizer)] {
        [("generator", models.generator, generatorOptimizer),
         ("discriminator", models.discriminator, discriminatorOptimizer)]
    }

    /// Rank 0's optimizer state (moments and step counts) copied to every rank, after a resume.
    public func synchronizeOptimizers() throws {
        for (_, _, optimizer) in namedNetworks {
            for (_, values) in optimizer.state { try communicator.broadcast(values, root: 0) }
            var steps = Int64(optimizer.stepCount)
            try withUnsafeMutableBytes(of: &steps) { try communicator.broadcast($0, root: 0) }
            optimizer.stepCount = Int(steps)
        }
    }
}
