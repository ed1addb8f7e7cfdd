import Distributed
import Foundation

/// `OUT/train.log`: the lines a terminal shows, one per event, appended (rank 0).
public final class LogFile: TrainingOutput {
    private let handle: FileHandle

    public init(directory: String) throws { handle = try appending(to: directory + "/train.log") }
    deinit { try? handle.close() }

    public func record(_ event: TrainingEvent) throws {
        guard let line = EventText.line(event) else { return }
        handle.write(Data((line + "\n").utf8))
    }
}

/// `OUT/metrics.jsonl`: one JSON object per log interval, appended (rank 0).
public final class MetricsFile: TrainingOutput {
    private let handle: FileHandle

    public init(directory: String) throws { handle = try appending(to: directory + "/metrics.jsonl") }
    deinit { try? handle.close() }

    public func record(_ event: TrainingEvent) throws {
        switch event {
        case let .interval(summary): handle.write(Data((EventText.json(summary) + "\n").utf8))
        case let .evaluated(record): handle.write(Data((EventText.json(record) + "\n").utf8))
        default: break
        }
    }
}

/// The words and numbers of events, for people (a terminal, `train.log`) and for tools (`metrics.jsonl`).
public enum EventText {
    /// One line for `event`, nil for none. A profile adds lines, one per rank.
    public static func line(_ event: TrainingEvent) -> String? {
        switch event {
        case let .started(r):
            let c = r.configuration
            return "gantry: \(c.model.rawValue) GAN, \(r.ranks) rank(s) x batch \(c.batchSize) = global batch \(r.globalBatch), "
                + "\(r.stepsPerEpoch) steps/epoch, steps \(r.firstStep)..<\(r.totalSteps), G \(r.generatorParameters) + "
                + "D \(r.discriminatorParameters) parameters, \(procedure(c)), \(r.threads) thread(s) per rank"
                + (r.ranks > 1 ? ", gradients " + exchange(r.exchange) : "")
                + (r.ranks > 1 && !r.hosts.isEmpty ? "\ngantry: hosts: " + hostList(r.hosts) : "")
        case let .resumed(path, step, skipped, notes):
            return (skipped.map { "gantry: skipped \($0.path): \($0.reason)" } + ["gantry: resuming from \(path) at step \(step)"]
                    + notes.map { "gantry: \($0.description)" })
                .joined(separator: "\n")
        case let .interval(s):
            return ([progress(s)] + (s.profile ?? []).map(profile)).joined(separator: "\n")
        case let .saved(file):
            return file.kind == .checkpoint && file.last ? "gantry: checkpoint \(file.path)" : nil
        case let .evaluated(r):
            return "eval  step \(r.step)  " + r.figures.map { "\($0.name) \(fixed($0.value, 3))" }.joined(separator: "  ")
        case let .finished(end):
            return "gantry: trained \(end.steps) steps in \(duration(end.seconds)); outputs in \(end.outputDirectory)"
        case let .stopped(stop):
            return "gantry: \(StopSignal.name(stop.signal)) received: every rank finished step \(stop.step); "
                + "writing its checkpoint"
        case .parameters:
            return nil
        }
    }

    /// Each host with its ranks, in rank order: "node1 (ranks 0-3), node2 (ranks 4-7)",
    /// "gantry-h1 (rank 0), gantry-h2 (rank 1)".
    static func hostList(_ hosts: [String]) -> String {
        var runs: [(host: String, ranks: ClosedRange<Int>)] = []
        for (rank, host) in hosts.enumerated() {
            if let last = runs.last, last.host == host, last.ranks.upperBound == rank - 1 {
                runs[runs.count - 1].ranks = last.ranks.lowerBound...rank
            } else {
                runs.append((host, rank...rank))
            }
        }
        return runs.map { run in
            "\(run.host) (" + (run.ranks.count == 1 ? "rank \(run.ranks.lowerBound)" : "ranks \(run.ranks.lowerBound)-\(run.ranks.upperBound)") + ")"
        }.joined(separator: ", ")
    }

    /// The loss and how a step updates the networks: "loss wgan-gp, alternating, 5 critic steps".
    static func procedure(_ c: GANConfiguration) -> String {
        var words = ["loss \(c.loss.rawValue)", "scheme \(c.updateScheme.rawValue)"]
        if c.updateScheme == .alternating {
            if c.criticSteps > 1 { words.append("\(c.criticSteps) critic steps") }
            if c.discriminatorUpdate == .split { words.append("D split") }
            if c.generatorNoise == .same { words.append("G on the same z") }
        }
        if c.generatorOptimizer.kind != .adam { words.append(c.generatorOptimizer.kind.rawValue) }
        if c.averagesGenerator { words.append("samples from G's moving average \(c.generatorAverageDecay)") }
        return words.joined(separator: ", ")
    }

    static func exchange(_ e: ExchangeOptions) -> String {
        (e.halfPrecision ? "fp16" : "fp32") + (e.overlap ? ", overlapped in \(e.bucketBytes >> 10) KiB buckets" : ", after backward")
    }

    /// The progress line of a log interval.
    public static func progress(_ s: IntervalSummary) -> String {
        let width = String(s.totalSteps).count
        let step = String(repeating: " ", count: max(0, width - String(s.step).count)) + String(s.step)
        let scores = s.loss.isWasserstein
            ? "W \(fixed(s.realScore - s.fakeScore, 3))" + (s.loss == .wganGP ? "  GP \(fixed(s.penalty, 3))" : "")
            : "D(x) \(fixed(s.realScore, 3))  D(G(z)) \(fixed(s.fakeScore, 3))"
        return "step \(step)/\(s.totalSteps)  epoch \(s.epoch)  D \(fixed(s.discriminatorLoss, 3))  "
            + "G \(fixed(s.generatorLoss, 3))  \(scores)  "
            + "\(Int(s.imagesPerSecond.rounded())) img/s  ETA \(duration(s.secondsRemaining))"
    }

    /// One rank's split of a step: compute, waiting for the slowest rank, the all-reduce.
    static func profile(_ p: StepProfile) -> String {
        func ms(_ seconds: Double) -> String { fixed(seconds * 1e3, 3) + " ms" }
        return "  rank \(p.rank): compute \(ms(p.compute))  wait \(ms(p.wait))  all-reduce \(ms(p.allReduce))  per step "
            + "(forward \(ms(p.phases[.forward, default: 0])), backward \(ms(p.phases[.backward, default: 0])), "
            + "update \(ms(p.phases[.optimizer, default: 0])), data \(ms(p.phases[.data, default: 0])))"
    }

    public static func json(_ s: IntervalSummary) -> String {
        var text = "{\"step\":\(s.step),\"epoch\":\(s.epoch),\"d_loss\":\(number(s.discriminatorLoss)),"
            + "\"g_loss\":\(number(s.generatorLoss)),"
            + (s.loss.isWasserstein
                ? "\"wasserstein\":\(number(s.realScore - s.fakeScore)),\"critic_real\":\(number(s.realScore)),"
                    + "\"critic_fake\":\(number(s.fakeScore)),\"penalty\":\(number(s.penalty)),"
                : "\"d_real\":\(number(s.realScore)),\"d_fake\":\(number(s.fakeScore)),")
            + "\"images_per_s\":\(number(s.imagesPerSecond)),\"seconds\":\(number(s.seconds))"
        if let profile = s.profile {
            // Seconds per step, per rank: the split, then each phase.
            text += ",\"profile\":[" + profile.map { p in
                "{\"rank\":\(p.rank),\"compute\":\(number(p.compute)),\"wait\":\(number(p.wait)),\"all_reduce\":\(number(p.allReduce)),"
                    + "\"phases\":{" + StepPhase.allCases.filter { p.phases[$0] != nil }
                        .map { "\"\($0.rawValue)\":\(number(p.phases[$0]!))" }.joined(separator: ",") + "}}"
            }.joined(separator: ",") + "]"
        }
        return text + "}"
    }

    /// An evaluation's record: {"step":N,"fid":...,"score":...,"coverage":...}.
    public static func json(_ r: EvaluationRecord) -> String {
        "{\"step\":\(r.step)," + r.figures.map { "\"\($0.name)\":\(number($0.value))" }.joined(separator: ",") + "}"
    }

    /// JSON has no NaN or infinity: such values are written as null.
    static func number(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "null" }
    static func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}

/// A handle appending to `path`, created if missing.
func appending(to path: String) throws -> FileHandle {
    if !FileManager.default.fileExists(atPath: path) {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw OutputError.cannotWrite(path: path)
        }
    }
    guard let handle = FileHandle(forWritingAtPath: path) else { throw OutputError.cannotWrite(path: path) }
    handle.seekToEndOfFile()
    return handle
}

/// Why an output could not be written; `description` is one line with the fix.
public enum OutputError: Error, CustomStringConvertible, Equatable {
    case cannotWrite(path: String)
    case cannotCreateDirectory(path: String, reason: String)
    case cannotRemove(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotWrite(path):
            return "cannot write \(path): check that its folder exists and is writable, or pass another --out"
        case let .cannotRemove(path, reason):
            return "cannot delete the old checkpoint \(path) (\(reason)): make its folder writable, or pass a larger --keep"
        case let .cannotCreateDirectory(path, reason):
            return "cannot create folder \(path): \(reason); pass an --out folder you can write to"
        }
    }
}

/// Creates `path` and its parents if missing, naming the part that stops it.
public func createDirectory(_ path: String) throws {
    var isFolder: ObjCBool = false
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
        if FileManager.default.fileExists(atPath: prefix, isDirectory: &isFolder) {
            guard isFolder.boolValue else { throw OutputError.cannotCreateDirectory(path: path, reason: "\(prefix) is a file") }
            continue
        }
        if mkdir(prefix, 0o777) != 0 && errno != EEXIST {
            throw OutputError.cannotCreateDirectory(path: path, reason: "\(prefix): \(String(cString: strerror(errno)))")
        }
    }
}
