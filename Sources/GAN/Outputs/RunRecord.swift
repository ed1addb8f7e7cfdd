import Datasets
import FileFormats
import Foundation

/// `OUT/run.json`: everything that made a run, so that `gantry train --config OUT/run.json --out
/// NEW` repeats it (with the same ranks, the same losses step for step): the resolved
/// configuration (presets expanded, every setting with its value) and schedule, and, to tell
/// what else may differ, the ranks, threads and hosts, Gantry's version and commit, the CPU and
/// kernels, and the training files' sizes and CRC-32s.
public struct RunRecord: Codable, Equatable, Sendable {
    public struct Build: Codable, Equatable, Sendable {
        public var version: String
        /// `git rev-parse HEAD` of the checkout the binary was built in, "+changes" when it had
        /// uncommitted ones; nil outside a checkout.
        public var commit: String?

        public init(version: String, commit: String?) {
            self.version = version
            self.commit = commit
        }
    }

    public struct DataFile: Codable, Equatable, Sendable {
        public var path: String
        public var bytes: Int
        /// CRC-32 (zlib's) of the file as stored, in hex.
        public var crc32: String
    }

    /// The run's schedule: `TrainingOptions` less where the outputs go and how to resume.
    public struct Schedule: Codable, Equatable, Sendable {
        public var steps: Int?
        public var epochs: Int?
        public var logEvery, sampleEvery, checkpointEvery, keep, checkEvery, sampleCount: Int
        public var evaluateEvery, histogramEvery: Int
        public var tensorboard, profile: Bool
        public var maxSeconds: Double?
        public var maxLoss: Double
        public var overlap: Bool
        public var bucketBytes: Int
        public var halfPrecision: Bool

        public init(_ o: TrainingOptions) {
            switch o.length {
            case let .steps(n): steps = n
            case let .epochs(n): epochs = n
            }
            logEvery = o.logEvery; sampleEvery = o.sampleEvery; checkpointEvery = o.checkpointEvery
            keep = o.keep; checkEvery = o.checkEvery; sampleCount = o.sampleCount
            evaluateEvery = o.evaluateEvery; histogramEvery = o.histogramEvery
            tensorboard = o.tensorboard; profile = o.profile; maxSeconds = o.maxSeconds; maxLoss = o.maxLoss
            overlap = o.exchange.overlap; bucketBytes = o.exchange.bucketBytes; halfPrecision = o.exchange.halfPrecision
        }

        /// The options of a run to `outputDirectory` on this schedule.
        public func options(outputDirectory: String) -> TrainingOptions {
            var o = TrainingOptions(outputDirectory: outputDirectory)
            o.length = epochs.map(TrainingLength.epochs) ?? .steps(steps ?? 0)
            o.logEvery = logEvery; o.sampleEvery = sampleEvery; o.checkpointEvery = checkpointEvery
            o.keep = keep; o.checkEvery = checkEvery; o.sampleCount = sampleCount
            o.evaluateEvery = evaluateEvery; o.histogramEvery = histogramEvery
            o.tensorboard = tensorboard; o.profile = profile; o.maxSeconds = maxSeconds; o.maxLoss = maxLoss
            o.exchange.overlap = overlap; o.exchange.bucketBytes = bucketBytes; o.exchange.halfPrecision = halfPrecision
            return o
        }
    }

    public var gantry: Build
    /// The command line of rank 0, as given.
    public var command: [String]
    public var configuration: GANConfiguration
    public var schedule: Schedule
    /// Images each `--eval-every` measurement judged.
    public var evaluationCount: Int
    public var ranks: Int
    public var threads: Int
    /// The host of each rank, in rank order.
    public var hosts: [String]
    public var cpu: String
    public var kernels: String
    public var dataDirectory: String
    public var dataFiles: [DataFile]

    public init(gantry: Build, command: [String], configuration: GANConfiguration, schedule: Schedule,
                evaluationCount: Int, ranks: Int, threads: Int, hosts: [String], cpu: String, kernels: String,
                dataDirectory: String, dataFiles: [DataFile]) {
        self.gantry = gantry; self.command = command; self.configuration = configuration; self.schedule = schedule
        self.evaluationCount = evaluationCount; self.ranks = ranks; self.threads = threads; self.hosts = hosts
        self.cpu = cpu; self.kernels = kernels; self.dataDirectory = dataDirectory; self.dataFiles = dataFiles
    }

    /// The size and CRC-32 of the training split's files in `directory` (those a run reads).
    public static func dataFiles(in directory: String) throws -> [DataFile] {
        let files = try MNISTFiles(directory: directory, split: .train)
        return try [files.images, files.labels].map { path in
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            return DataFile(path: path, bytes: bytes.count, crc32: bytes.withUnsafeBytes { CRC32.hex($0) })
        }
    }

    /// Sorted keys, indented: the same run gives the same text.
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self)) + [UInt8(ascii: "\n")]
    }

    /// Reads a run.json, or says in one line why it cannot.
    public static func read(path: String) throws -> RunRecord {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw RunRecordError.unreadable(path: path)
        }
        do { return try JSONDecoder().decode(RunRecord.self, from: data) } catch {
            throw RunRecordError.notARunRecord(path: path, reason: RunRecordError.reason(error))
        }
    }
}

/// Why a run.json could not be read; `description` is one line with the fix.
public enum RunRecordError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String)
    case notARunRecord(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path):
            return "--config \(path): cannot read the file; pass the run.json a gantry train run wrote in its --out folder"
        case let .notARunRecord(path, reason):
            return "--config \(path) is not a run.json of gantry train (\(reason)); pass the run.json from a run's --out folder"
        }
    }

    static func reason(_ error: Error) -> String {
        switch error as? DecodingError {
        case let .keyNotFound(key, _)?: return "no \"\(key.stringValue)\""
        case let .typeMismatch(_, context)?, let .valueNotFound(_, context)?, let .dataCorrupted(context)?:
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not JSON" : "bad \"\(path)\""
        default: return "\(error)"
        }
    }
}

/// Writes `OUT/run.json` when the run starts (rank 0), with the ranks, threads and hosts the run
/// found; a resumed run rewrites it (its checkpoint's configuration, this invocation's ranks).
public final class RunRecordFile: TrainingOutput {
    private var record: RunRecord

    /// `record`: all but what the run finds when it starts.
    public init(_ record: RunRecord) {
        self.record = record
    }

    public func record(_ event: TrainingEvent) throws {
        guard case let .started(run) = event else { return }
        record.configuration = run.configuration
        record.ranks = run.ranks
        record.threads = run.threads
        record.hosts = run.hosts
        try AtomicFileWriter.write(try record.json(), to: run.outputDirectory + "/run.json")
    }
}
